#!/usr/bin/env bash
# Per-iteration overhead of `stylize serve` against the CLI: the same run (ResNet-18, one scale, seed 1,
# --threads 1) alternately through the CLI and through the API with an event stream attached (as a
# page watching it: progress every iteration, a JPEG preview every 5), PAIRS times. Prints ms/iteration
# of each and their ratio; both are the optimiser's own time (last report's elapsed / iterations).
# Usage: scripts/web-overhead.sh CONTENT STYLE [SIZE=256] [ITERATIONS=60] [PAIRS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
content=$(realpath "$1"); style=$(realpath "$2"); size=${3:-256}; n=${4:-60}; pairs=${5:-3}
bin=src/StyleTransfer.Cli/bin/Release/net10.0/stylize
[ -x "$bin" ] || dotnet build src/StyleTransfer.Cli -c Release >/dev/null
data=$(mktemp -d); port=${PORT:-5099}
"$bin" serve --port "$port" --data "$data/web" --threads 1 >"$data/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
until curl -sf "http://127.0.0.1:$port/api/config" >/dev/null; do sleep 0.5; done
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; ${size} px, $n iterations, resnet18, --threads 1"
for i in $(seq "$pairs"); do
    cli=$("$bin" "$content" "$style" -o "$data/cli.png" --size "$size" -n "$n" --network resnet18 --scales 1 --threads 1 --seed 1 |
        sed -nE 's/.*\(([0-9]+) ms\/iteration\).*/\1/p')
    id=$(curl -sf -F "content=@$content" -F "style=@$style" -F size="$size" -F iterations="$n" -F network=resnet18 -F scales=1 -F seed=1 \
        "http://127.0.0.1:$port/api/jobs" | sed -E 's/.*"id":"([0-9a-f]+)".*/\1/')
    curl -sN "http://127.0.0.1:$port/api/jobs/$id/events" >"$data/events.txt"
    read -r served hooks < <(curl -sf "http://127.0.0.1:$port/api/jobs/$id" |
        python3 -c 'import json,sys; j=json.load(sys.stdin); print(round(j["secondsPerIteration"]*1000, 1), round(j["hookSeconds"]*1000, 2))')
    previews=$(grep -c '^event: preview' "$data/events.txt" || true)
    python3 -c "print(f'pair $i: cli $cli ms/iteration, served $served ms/iteration ($previews previews streamed), served/cli {$served/$cli:.3f}; hooks on the optimisation thread {$hooks} ms in all = {$hooks/($served*$n)*100:.3f} % of the served run')"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
