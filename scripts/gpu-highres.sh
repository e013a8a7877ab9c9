#!/usr/bin/env bash
# High resolution on a GPU machine (issue 15, item 4), with the package of `scripts/gpu-check.sh build`
# (carry .gpu; content.jpg and style.jpg in .gpu, e.g. tubingen.jpg and starry_night.jpg):
#   (a) the default recipe (ResNet-18) at 512, 1024, 2048 and 3840 px: wall time, peak GPU memory
#       (nvidia-smi, sampled every 100 ms), the start-up memory line;
#   (b) `stylize bench --tiles auto` at 3840 and 7680 px for VGG-19 (random full-width weights) and
#       ResNet-18: ms per iteration, the tile and history the GPU's budget chose, GPU memory;
#   (c) the default recipe at 7680 px, in what time is left (DEADLINE seconds from the start).
# Outputs: $OUT/highres.log, the 512–3840 px images as JPEG, and crops of the 7680 px one.
# Environment as scripts/gpu-check.sh run, plus DEADLINE (default 520), SIZES (default 512,1024,2048,3840),
# BENCH_SIZES (default 3840,7680), TILED_BUDGET (default 12G: a 3840 px run with that --max-memory) and BIG
# (default 7680); an empty SIZES, BENCH_SIZES, TILED_BUDGET or BIG skips that part. EXTRA: more stylize
# arguments for the SIZES runs, whose outputs are then named TAG-SIZE.jpg (default TAG: default). A smoke test here (CPU):
# DEVICE=cpu PYTHON=/usr/bin/python3 LIBTORCH_DIR=~/.nuget/packages/libtorch-cpu-linux-x64/2.10.0/runtimes/linux-x64/native SIZES=64 BENCH_SIZES=64 BIG=96 scripts/gpu-highres.sh
set -uo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/gpu-env.sh
. scripts/gpu-env.sh
deadline=$((SECONDS + ${DEADLINE:-520}))
log="$out/highres.log"
exec > >(tee -a "$log") 2>&1
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv 2>/dev/null || true
left() { local l=$((deadline - SECONDS)); [ "$l" -gt "$1" ] && echo "$1" || echo "$l"; }

# Runs a command under a time limit while sampling the GPU's used memory; prints wall time and the peak.
measured() { # name limit command...
  local name=$1 limit=$2; shift 2
  if [ "$limit" -le 5 ]; then echo "skip $name: no time left"; return; fi
  local samples=/tmp/gpu-mem-$name.txt t0=$SECONDS
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$samples" 2>/dev/null &
  local sampler=$!
  timeout "$limit" "$@"
  local rc=$?
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
  echo "measured $name rc=$rc wall_s=$((SECONDS - t0)) gpu_peak_mib=$(sort -n "$samples" | tail -n 1)"
}

IFS=, read -r -a sizes <<< "${SIZES-512,1024,2048,3840}"
read -r -a extra <<< "${EXTRA:-}"
tag=${TAG:-default}
for s in "${sizes[@]}"; do
  measured "$tag-$s" "$(left 300)" "$app/stylize" "$content" "$style" -o "$out/$tag-$s.jpg" --size "$s" --device "$device" --seed 1 "${r18[@]}" "${extra[@]}"
done

# The same 3840 px run under a budget that makes it tile: the tiled path on the GPU, and its cost.
if [ -n "${TILED_BUDGET-12G}" ]; then
  measured tiled-3840 "$(left 300)" "$app/stylize" "$content" "$style" -o "$out/tiled-3840.jpg" --size 3840 --device "$device" --seed 1 "${r18[@]}" --max-memory "${TILED_BUDGET-12G}"
fi

for net in resnet18 vgg19; do
  [ -z "${BENCH_SIZES-x}" ] && break
  weights=(); [ "$net" = resnet18 ] && weights=("${r18[@]}")
  measured "bench-$net" "$(left 150)" "$app/stylize" bench --device "$device" --network "$net" "${weights[@]}" --sizes "${BENCH_SIZES:-3840,7680}" -n 5 --tiles auto
done

big=${BIG-7680}
[ -z "$big" ] && { echo "done at ${SECONDS}s"; exit 0; }
rm -f "/tmp/default-$big.png"
measured "default-$big" "$(left 600)" "$app/stylize" "$content" "$style" -o "/tmp/default-$big.png" --size "$big" --device "$device" --seed 1 "${r18[@]}"
if [ -f "/tmp/default-$big.png" ]; then
  $py - "/tmp/default-$big.png" "$out" <<'PY'
import sys
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
im = Image.open(sys.argv[1]).convert("RGB")
w, h = im.size
cw, ch = min(w, 1920), min(h, 1080)
im.crop((w // 2 - cw // 2, h // 4, w // 2 - cw // 2 + cw, h // 4 + ch)).save(sys.argv[2] + "/default-big-crop.jpg", quality=92)
im.resize((1024, h * 1024 // w), Image.LANCZOS).save(sys.argv[2] + "/default-big-small.jpg", quality=92)
print("largest output", w, "x", h)
PY
fi
echo "done at ${SECONDS}s"
