#!/usr/bin/env bash
# GPU check for `stylize --device cuda` (issue 8). Two halves:
#
#   scripts/gpu-check.sh build   here (the .NET machine): publishes `stylize` and `devicecheck`
#                                self-contained for linux-x64 WITHOUT the CPU libtorch package
#                                (-p:TorchBackend=external), swaps in a copy of ResNet-18 whose
#                                layer4/classifier are zeroed (scripts/zero_resnet18_tail.py; checked
#                                equal to the original up to layer3_1, the deepest default layer), and
#                                packs it all into .gpu/stylize-gpu.tar.xz (about 40 MB) so it fits the
#                                64 MiB that travels to the GPU machine. Put the content and style
#                                images for the 1024 px run in .gpu/ as content.jpg and style.jpg
#                                (default: examples/village.jpg and examples/swirls.jpg).
#   scripts/gpu-check.sh run     on the GPU machine (PyTorch with CUDA, no .NET): unpacks, points
#                                LD_LIBRARY_PATH at PyTorch's libtorch, and runs (a) the parity
#                                tests' reference cases on CUDA, (b) `stylize bench` next to
#                                scripts/gpu_reference.py doing the same math, in fp32, bf16, fp16,
#                                (c) full stylisations at 1024 px with the default network in each
#                                precision. Results go to stdout and to $OUT (or ./gpu-out).
#
# Environment for `run`: DEVICE (default cuda), ITERS (bench iterations, default 20), BENCH_SIZES
# (default 512,1024), SIZE (stylisation, default 1024), PYTHON (default python3), LIBTORCH_DIR
# (default: PyTorch's lib folder), OUT (default ./gpu-out). A smoke test of `run` on the .NET
# machine: DEVICE=cpu PYTHON=/usr/bin/python3 LIBTORCH_DIR=~/.nuget/packages/libtorch-cpu-linux-x64/2.10.0/runtimes/linux-x64/native ITERS=2 BENCH_SIZES=64 SIZE=64 scripts/gpu-check.sh run
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}

build() {
  rm -rf .gpu/app
  mkdir -p .gpu
  for p in src/StyleTransfer.Cli tests/StyleTransfer.DeviceCheck; do
    dotnet publish "$p" -c Release -r linux-x64 --self-contained -p:TorchBackend=external -o .gpu/app -v q -nologo
  done
  # The zeroed copy must give the original's taps up to layer3_1, exactly (checked with the normal build).
  dotnet build tests/StyleTransfer.DeviceCheck -c Release -v q -nologo >/dev/null
  local dc=tests/StyleTransfer.DeviceCheck/bin/Release/net10.0
  /usr/bin/python3 scripts/zero_resnet18_tail.py .gpu/app/models/ResNet18.onnx .gpu/ResNet18-tail-zeroed.onnx
  dotnet "$dc/devicecheck.dll" same-resnet18 .gpu/app/models/ResNet18.onnx .gpu/ResNet18-tail-zeroed.onnx layer3_1
  # Under its own name: the bundled ResNet18.onnx is checked against its SHA-256, so runs name this copy
  # with --weights (gpu-env.sh sets $r18).
  mv .gpu/ResNet18-tail-zeroed.onnx .gpu/app/models/ResNet18-tail-zeroed.onnx
  rm .gpu/app/models/ResNet18.onnx
  if ls .gpu/app | grep -q '^libtorch'; then echo "error: the CPU libtorch is in the package" >&2; exit 1; fi
  # OpenCV's native library (114 MB, for `stylize video`) does not fit the 64 MiB that travels: the
  # package runs everything but video.
  # package runs everything but video. Nor do the batch (Orleans, Npgsql), the contact sheets (SkiaSharp,
  # ScottPlot) and the debugger's libraries: `batch`, `figure1`/`grid` sheets do not run from it.
  rm -f .gpu/app/libOpenCvSharpExtern.so
  (cd .gpu/app && rm -f -- *CodeAnalysis* *Skia* *HarfBuzz* libmscordaccore.so libmscordbi.so createdump Orleans.* Npgsql* ScottPlot*)
  tar -C .gpu -cf - app | xz -T2 -6 > .gpu/stylize-gpu.tar.xz
  rm -rf .gpu/app
  ls -la .gpu
}

run() {
  local iters=${ITERS:-20} sizes=${BENCH_SIZES:-512,1024} size=${SIZE:-1024}
  rm -rf /tmp/stylize-gpu/app   # a fresh unpack of this package
  # shellcheck source=scripts/gpu-env.sh
  . scripts/gpu-env.sh
  nvidia-smi -L 2>/dev/null || true
  $py -c 'import torch; print("pytorch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no cuda")' || true

  echo "== parity on $device (fixtures of the CPU parity tests)"
  "$app/devicecheck" parity tests/StyleTransfer.Tests/Fixtures "$device" || echo "devicecheck exit $?"

  echo "== bench: C# (stylize bench) and PyTorch (scripts/gpu_reference.py), VGG-19 shape, same process order"
  for prec in fp32 bf16 fp16; do
    [ "$device" = cpu ] && [ "$prec" = fp16 ] && continue
    "$app/stylize" bench --device "$device" --precision "$prec" --sizes "$sizes" -n "$iters" | grep '^bench' || echo "stylize bench exit $?"
    $py scripts/gpu_reference.py --device "$device" --precision "$prec" --sizes "$sizes" -n "$iters" || echo "gpu_reference exit $?"
  done
  "$app/stylize" bench --device "$device" --network resnet18 "${r18[@]}" --sizes "$sizes" -n "$iters" | grep '^bench' || echo "stylize bench resnet18 exit $?"

  echo "== stylise at $size px, default network, $content + $style"
  for prec in fp32 bf16 fp16; do
    [ "$device" = cpu ] && [ "$prec" = fp16 ] && continue
    local t0=$SECONDS
    "$app/stylize" "$content" "$style" -o "$out/stylized-$size-$prec.jpg" --size "$size" --device "$device" --precision "$prec" --seed 1 "${r18[@]}" 2>&1 | tail -n 3 || echo "stylize exit $?"
    echo "stylize $size $prec wall_s=$((SECONDS - t0))"
  done
}

case "$mode" in
  build) build ;;
  run) run ;;
  *) echo "usage: scripts/gpu-check.sh build|run" >&2; exit 2 ;;
esac
