#!/usr/bin/env bash
# Every command and the beyond-the-paper options on CUDA (same environment variables as
# `scripts/gpu-check.sh run`; unpacks .gpu/stylize-gpu.tar.xz if that has not). Small sizes: this checks that each path runs on
# the device; the timings that matter are in gpu-check.sh. Ends with single scale vs --scales auto
# at 1024 px: the time each needs to reach the single-scale 500-iteration loss.
set -uo pipefail
cd "$(dirname "$0")/.."
fs=${FSIZE:-384} big=${BIG:-1024} bign=${BIGN:-500}   # smoke test: FSIZE=64 BIG=64 BIGN=4
# shellcheck source=scripts/gpu-env.sh
. scripts/gpu-env.sh
c=$content s=$style s2=$style2
w=/tmp/gpu-features; mkdir -p "$w"
$py - "$w/left.png" <<'PY'
import sys
from PIL import Image
im = Image.new("L", (400, 300), 0)
im.paste(255, (0, 0, 200, 300))
im.save(sys.argv[1])
PY
run() { # name, then stylize arguments
  local name=$1; shift
  local t0=$SECONDS
  if "$app/stylize" "$@" --device "$device" > "$w/$name.txt" 2>&1; then
    echo "ok   $name ($((SECONDS - t0)) s): $(grep -E '^wrote|final loss' "$w/$name.txt" | tail -n 1 | cut -c1-160)"
  else
    echo "FAIL $name (exit $?): $(tail -n 2 "$w/$name.txt" | tr '\n' ' ' | cut -c1-300)"
  fi
}
run reconstruct reconstruct "$c" -o "$w/reconstruct.png" --size "$fs" -n 50 --seed 1
run texture texture "$s" -o "$w/texture.png" --size "${fs}x$fs" -n 50 --seed 1
run figure1 figure1 "$c" "$s" -o "$w/figure1.png" --size "$fs" -n 30 --seed 1
run grid grid "$c" "$s" -o "$w/grid.png" --size "$fs" -n 20 --ratios 1e-9,1e-8 --depths 1,3 --seed 1
run blend "$c" "$s" "$s2" -o "$w/blend.jpg" --size "$fs" -n 50 --style-blend 0.7,0.3 --seed 1
run mask "$c" "$s" "$s2" -o "$w/mask.jpg" --size "$fs" -n 50 --mask "1=$w/left.png" --seed 1
run w2 "$c" "$s" -o "$w/w2.jpg" --size "$fs" -n 50 --style-loss w2 --seed 1
run luminance "$c" "$s" -o "$w/lum.jpg" --size "$fs" -n 50 --preserve-color luminance --seed 1
run histogram "$c" "$s" -o "$w/hist.jpg" --size "$fs" -n 50 --preserve-color histogram --seed 1
run replicate "$c" "$s" -o "$w/rep.jpg" --size "$fs" -n 50 --padding replicate --seed 1
run checkpoint "$c" "$s" -o "$w/ck.jpg" --size "$fs" -n 40 --save-every 20 --seed 1
run resume "$c" "$s" -o "$w/ck.jpg" --size "$fs" -n 40 --resume "$w/ck.ckpt"
run adam "$c" "$s" -o "$w/adam.jpg" --size "$fs" -n 50 --optimizer adam --seed 1

echo "== $big px: single scale, $bign iterations, vs --scales auto"
run single500 "$c" "$s" -o "$out/single-$big.jpg" --size "$big" -n "$bign" --seed 1 --log "$w/single.json"
run auto500 "$c" "$s" -o "$out/auto-$big.jpg" --size "$big" -n "$bign" --scales auto --seed 1 --log "$w/auto.json"
$py - "$w/single.json" "$w/auto.json" <<'PY'
import json, sys
single = json.load(open(sys.argv[1]))["runs"][0]["iterations"]
auto = json.load(open(sys.argv[2]))["runs"][0]["iterations"]
target = single[-1]["total"]
def reach(its):
    last = max(i.get("scale", 1) for i in its)
    for i in its:
        if i.get("scale", 1) == last and i["total"] <= target:
            return i["seconds"], i["iteration"]
    return None
print(f"single scale: final loss {target:.6g} after {len(single)} iterations in {single[-1]['seconds']:.1f} s")
print(f"--scales auto: final loss {auto[-1]['total']:.6g} after {len(auto)} iterations in {auto[-1]['seconds']:.1f} s; "
      f"reaches the single-scale final loss: {reach(auto)} (seconds, iteration) ; single reaches it at {reach(single)}")
PY
