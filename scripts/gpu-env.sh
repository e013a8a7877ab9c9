# Sourced by scripts/gpu-check.sh (run) and scripts/gpu-features.sh on the GPU machine: unpacks the
# package once, puts PyTorch's libtorch on the loader path, and picks the images.
# Sets: device out py app content style style2, and r18: the arguments that name the package's ResNet-18
# (its layer4 zeroed to fit; the bundled name is kept for the original, which is checked by SHA-256). Environment: DEVICE, OUT, PYTHON, LIBTORCH_DIR.
device=${DEVICE:-cuda} out=${OUT:-$PWD/gpu-out} py=${PYTHON:-python3}
app=/tmp/stylize-gpu/app
r18=(--weights "$app/models/ResNet18-tail-zeroed.onnx")
mkdir -p "$out"
if [ ! -x "$app/stylize" ]; then
  mkdir -p /tmp/stylize-gpu
  tar -C /tmp/stylize-gpu -xJf .gpu/stylize-gpu.tar.xz
fi
export LD_LIBRARY_PATH="${LIBTORCH_DIR:-$($py -c 'import torch, os; print(os.path.dirname(torch.__file__) + "/lib")')}:${LD_LIBRARY_PATH:-}"
content=examples/village.jpg style=examples/swirls.jpg style2=examples/village.jpg
[ -f .gpu/content.jpg ] && content=.gpu/content.jpg
[ -f .gpu/style.jpg ] && style=.gpu/style.jpg
[ -f .gpu/style2.jpg ] && style2=.gpu/style2.jpg
