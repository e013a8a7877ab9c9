#!/usr/bin/env bash
# The figures of docs/cluster.md: one batch of 16 small renders (4 contents x 4 styles), run
#   1. in this process (`stylize batch`, no cluster),
#   2. on a cluster of one `stylize worker`, and
#   3. on a cluster of two (--threads 1 each),
# against a throwaway PostgreSQL (Debian's postgresql package; initdb in a temporary folder, a free
# loopback port, stopped at exit whatever happens). Prints, per run, the batch's wall time and how
# the time splits: optimising vs everything else (start-up, model load, inputs, encoding, scheduling).
#   scripts/batch-figures.sh CONTENT_DIR STYLE_DIR [SIZE] [ITERATIONS] [ROUNDS]
# MODES="inprocess 1 2" chooses the runs. With the kernel's autogroup scheduling (Debian's default)
# every session gets one share of a busy machine, so workers started from one shell share one;
# SESSIONS=1 starts each worker in a session of its own (setsid), as if on a machine of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
contents=$(realpath "$1"); styles=$(realpath "$2"); size=${3:-64}; iters=${4:-10}; rounds=${5:-1}
dotnet build src/StyleTransfer.Cli -c Release -v q -nologo >/dev/null
bin=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
tmp=$(mktemp -d /tmp/stylize-figures-XXXXXX); chmod 777 "$tmp"
cp -r src/StyleTransfer.Cli/bin/Release/net10.0 "$tmp/stylize"   # a copy: later builds do not change a running measurement
S="dotnet $tmp/stylize/stylize.dll"
pids=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  as_pg "$bin/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg "$bin/initdb" -D "$tmp/data" -A trust -U postgres --no-sync >/dev/null
as_pg "$bin/pg_ctl" -D "$tmp/data" -l "$tmp/pg.log" -w -o "-p $port -k $tmp -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
url="postgres://postgres@127.0.0.1:$port/postgres"
recipe=(--network resnet18 --size "$size" -n "$iters" --scales 1 --threads 1)
echo "# $(date -u +%FT%TZ) $(nproc) cores; load at start $(cut -d' ' -f1-3 /proc/loadavg); 16 renders of ${size} px, $iters L-BFGS iterations, resnet18, --threads 1"

cpu_of() { # pid: user+system seconds so far (from /proc/PID/stat)
  awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"
}

report() { # name workers outdir
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
name, workers, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
m = json.load(open(out + "/manifest.json"))["renders"]
wall = float(open(out + "/wall").read())
cpu = sum(float(x) for x in open(out + "/cpu").read().split())
n = len(m); opt = sum(r["optimize_seconds"] for r in m); work = sum(r["seconds"] for r in m)
by = {}
for r in m: by[r["worker"]] = by.get(r["worker"], 0) + 1
print(f"{name:12s} workers {workers}  wall {wall:6.1f} s  per render {wall*workers/n:5.2f} worker-s: optimising {opt/n:5.2f} s, "
      f"rest of the render {(work-opt)/n:5.2f} s, between renders {(wall*workers-work)/n:5.2f} s  (not optimising: {(wall*workers-opt)/n:5.2f} s); "
      f"CPU {cpu/n:5.2f} s per render (all processes)  by {by}")
PY
}

for round in $(seq 1 "$rounds"); do
  for mode in ${MODES:-inprocess 1 2}; do
    out="$tmp/out-$mode-$round"
    if [ "$mode" = inprocess ]; then
      start=$(date +%s.%N)
      /usr/bin/time -f "%U %S" -o "$tmp/sub.time" $S batch --contents "$contents" --styles "$styles" -o "$out" "${recipe[@]}" --timeout 1800 > "$tmp/sub.log"
      echo "$(date +%s.%N) - $start" | bc > "$out/wall"
      cp "$tmp/sub.time" "$out/cpu"
      report in-process 1 "$out"
      continue
    fi
    pids=()
    for w in $(seq 1 "$mode"); do
      if [ "${SESSIONS:-0}" = 1 ]; then
        setsid $S worker --cluster "$url" --name "w$w" --threads 1 > "$tmp/w$w.log" 2>&1 & pids+=($!)
      else
        $S worker --cluster "$url" --name "w$w" --threads 1 > "$tmp/w$w.log" 2>&1 & pids+=($!)
      fi
    done
    for w in $(seq 1 "$mode"); do
      for _ in $(seq 1 600); do grep -q "joined" "$tmp/w$w.log" && break; sleep 0.1; done
    done
    before=0; for p in "${pids[@]}"; do before=$(echo "$before + $(cpu_of "$p")" | bc); done   # worker start-up, before the batch
    start=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$tmp/sub.time" $S batch --cluster "$url" --contents "$contents" --styles "$styles" -o "$out" "${recipe[@]}" --timeout 1800 > "$tmp/sub.log"
    echo "$(date +%s.%N) - $start" | bc > "$out/wall"
    after=0; for p in "${pids[@]}"; do after=$(echo "$after + $(cpu_of "$p")" | bc); done
    { cat "$tmp/sub.time"; echo "$after - $before" | bc; } > "$out/cpu"
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
    report cluster "$mode" "$out"
  done
done
echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)"
