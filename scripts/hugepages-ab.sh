#!/usr/bin/env bash
# Interleaved A/B of glibc's huge-page tunable (docs/performance.md, "Huge pages by CPU"):
# A = the default allocator, B = GLIBC_TUNABLES=glibc.malloc.hugetlb=1, each case run ABAB (BABA in
# even rounds). STYLIZE_HUGE_PAGES=off keeps the CLI from adding the tunable to A itself. Prints one
# line per run: load, faults, user/sys CPU seconds, wall seconds, the bench line.
#   scripts/hugepages-ab.sh [ROUNDS] ["bench args" ...]
# Default cases: ResNet-18 512 px and VGG-19 256 px, fp32 and bf16.
set -uo pipefail
cd "$(dirname "$0")/.."
dotnet build src/StyleTransfer.Cli -c Release -v q -nologo >/dev/null
S="dotnet src/StyleTransfer.Cli/bin/Release/net10.0/stylize.dll"
rounds=${1:-3}
shift || true
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(
  "--network resnet18 --sizes 512 -n 6 --precision fp32"
  "--network resnet18 --sizes 512 -n 6 --precision bf16"
  "--network vgg19 --sizes 256 -n 3 --precision fp32"
  "--network vgg19 --sizes 256 -n 3 --precision bf16")
echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) $(nproc) cores; THP $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
waitquiet() { # up to 2 minutes for the 1-minute load to fall under 30 (skips other jobs' spikes)
  for _ in $(seq 1 12); do
    awk '{exit !($1 < 30)}' /proc/loadavg && return
    sleep 10
  done
}
one() { # label tunables bench-args...
  waitquiet
  local label=$1 tun=$2; shift 2
  local out
  out=$( { GLIBC_TUNABLES=$tun STYLIZE_HUGE_PAGES=off /usr/bin/time -f "faults=%R user=%U sys=%S wall=%e" \
           $S bench --peak-gflops 300 "$@" | grep '^bench'; } 2>&1 )
  echo "$(date -u +%T) load=$(cut -d' ' -f1 /proc/loadavg) $label $(echo $out | tr '\n' ' ')"
}
B=glibc.malloc.hugetlb=1
for r in $(seq 1 "$rounds"); do
  for c in "${cases[@]}"; do
    # shellcheck disable=SC2086
    if [ $((r % 2)) = 1 ]; then
      one "r$r A" "" $c; one "r$r B" $B $c; one "r$r A" "" $c; one "r$r B" $B $c
    else
      one "r$r B" $B $c; one "r$r A" "" $c; one "r$r B" $B $c; one "r$r A" "" $c
    fi
  done
done
