#!/usr/bin/env bash
# CPU performance cases of docs/performance.md, one after another; run on a quiet machine
# (`uptime` load near 0). Prints the measured peak, the bench lines, the per-layer profiles and the
# 500-iteration memory runs. The README example in fp32 and bf16 (loss, wall, memory) is run by hand:
#   /usr/bin/time -v stylize examples/village.jpg examples/swirls.jpg -o out.png --seed 1 [--precision bf16]
#   scripts/bench-cpu.sh [quick]     quick: fewer iterations, no 1024 px, no 500-iteration memory run
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build src/StyleTransfer.Cli -c Release -v q -nologo >/dev/null
S="dotnet src/StyleTransfer.Cli/bin/Release/net10.0/stylize.dll"
n=${N:-6}
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
$S bench --sizes 16 -n 1 | head -1   # the measured fp32 peak
for net in vgg19 resnet18; do
  for prec in fp32 bf16; do
    for cl in 0 1; do
      echo "## $net $prec channels_last=$cl"
      STYLIZE_CHANNELS_LAST=$cl $S bench --network $net --precision $prec --sizes 256,512 -n "$n" | grep '^bench'
    done
  done
done
if [ "${1:-}" != quick ]; then
  for prec in fp32 bf16; do
    echo "## vgg19 $prec 1024 px, channels_last"
    $S bench --network vgg19 --precision $prec --sizes 1024 -n 2 | grep '^bench'
  done
  for prec in fp32 bf16; do
    echo "## vgg19 $prec 512 px profile (each convolution alone), channels_last"
    $S bench --profile --precision $prec --sizes 512 -n 3 | grep -E '^(profile|bench)'
  done
  echo "## memory: resnet18 256 px, 500 iterations (rss50_mb, rss150_mb, rss500_mb)"
  $S bench --network resnet18 --sizes 256 -n 500 | grep '^bench'
  echo "## memory: vgg19 128 px, 500 iterations"
  $S bench --network vgg19 --sizes 128 -n 500 | grep '^bench'
fi
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
