#!/usr/bin/env bash
# Packs the library (StyleTransfer) and the tool (stylize) into artifacts/, then proves both work
# from that folder alone, in a fresh temporary folder outside the repository:
#   1. `dotnet tool install stylize --tool-path DIR --add-source artifacts` gives a `stylize` that
#      runs `stylize models`, a tiny stylisation (64 px, 3 iterations, one thread) and
#      `stylize metrics` on its output (the diagnostics assembly is in the tool);
#   2. a new console project referencing the StyleTransfer package (nothing from this repository's
#      Directory.Build.* files) builds, loads libtorch and finds the bundled ResNet-18 files: the
#      Debian 12 fix reaches it through the package's buildTransitive targets.
# It also checks the library package's .nuspec: no ScottPlot or SkiaSharp among its dependencies.
# Usage: scripts/pack-check.sh [--no-build]   (--no-build: pack what `dotnet build -c Release` built)
# Prints one "pack-check:" line per step with its time, and the package sizes; exits non-zero on
# the first failure. Run by .ci/run after the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
artifacts="$repo/artifacts"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

pack_args=()
if [ "${1:-}" = "--no-build" ]; then
    pack_args+=(--no-build)
fi

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
mb() { awk -v s="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", s / 1048576 }'; }

work=$(mktemp -d /tmp/stylize-pack-check.XXXXXX)
trap 'rm -rf "$work"' EXIT

# 1. Pack.
t=$(now)
rm -f "$artifacts"/StyleTransfer.*.nupkg "$artifacts"/stylize.*.nupkg
dotnet pack StyleTransfer.slnx -c Release "${pack_args[@]}" -v quiet -nologo >"$work/pack.log" 2>&1 || { cat "$work/pack.log" >&2; exit 1; }
lib=$(ls "$artifacts"/StyleTransfer.*.nupkg)
tool=$(ls "$artifacts"/stylize.*.nupkg)
version=$(basename "$tool" .nupkg); version=${version#stylize.}
echo "pack-check: packed in $(since "$t") s: $(basename "$lib") $(mb "$lib") MB, $(basename "$tool") $(mb "$tool") MB"

# The library package depends on TorchSharp and ImageSharp (and libtorch), not on the plotting stack:
# experiments, diagnostics, contact sheets and loss plots (StyleTransfer.Diagnostics, with ScottPlot
# and SkiaSharp) travel in the tool package only.
command -v unzip >/dev/null 2>&1 || { echo "error: pack-check needs unzip (apt-get install unzip)" >&2; exit 1; }
deps=$(unzip -p "$lib" StyleTransfer.nuspec | grep -o '<dependency id="[^"]*"' | sed 's/.*id="//; s/"$//' | sort | paste -sd ' ' -)
if grep -Eiq 'ScottPlot|SkiaSharp' <<<"$deps"; then echo "error: the library package depends on the plotting stack: $deps" >&2; exit 1; fi
grep -q 'TorchSharp' <<<"$deps" && grep -q 'SixLabors.ImageSharp' <<<"$deps" || { echo "error: the library package's dependencies: $deps" >&2; exit 1; }
lib_files=$(unzip -Z1 "$lib")
tool_files=$(unzip -Z1 "$tool")
if grep -q 'StyleTransfer.Diagnostics.dll' <<<"$lib_files"; then echo "error: StyleTransfer.Diagnostics.dll is in the library package" >&2; exit 1; fi
grep -q '^tools/net10.0/any/StyleTransfer.Diagnostics.dll$' <<<"$tool_files" || { echo "error: StyleTransfer.Diagnostics.dll is missing from the tool package" >&2; exit 1; }
echo "pack-check: library package depends on: $deps; StyleTransfer.Diagnostics.dll in the tool package only"

# The packages just made share their version with earlier builds: drop earlier copies of exactly
# these two from the NuGet cache, so the installs below take the new ones.
cache=$(dotnet nuget locals global-packages --list | sed -E 's/^[^:]*: *//')
rm -rf "$cache/stylize/$version" "$cache/styletransfer/$version"

# 2. The tool, installed from the local feed into a fresh folder.
t=$(now)
(cd "$work" && dotnet tool install stylize --tool-path "$work/tools" --add-source "$artifacts" --version "$version") >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; exit 1; }
echo "pack-check: tool installed in $(since "$t") s"

# No weights in an empty hub cache: `stylize models` lists every network, ResNet-18 (bundled) the default.
mkdir -p "$work/torch"
export TORCH_HOME="$work/torch"
(cd "$work" && "$work/tools/stylize" models) >"$work/models.txt"
grep -q '^resnet18 (default here): weights found: ' "$work/models.txt" || { echo "error: 'stylize models' from the installed tool:" >&2; cat "$work/models.txt" >&2; exit 1; }
grep -q '^vgg19: weights not found' "$work/models.txt" || { echo "error: 'stylize models' does not list vgg19:" >&2; cat "$work/models.txt" >&2; exit 1; }
echo "pack-check: stylize models: $(grep -c ': weights ' "$work/models.txt") networks listed, resnet18 bundled"

t=$(now)
(cd "$work" && "$work/tools/stylize" "$repo/examples/village.jpg" "$repo/examples/swirls.jpg" -o "$work/out.png" --size 64 -n 3 --threads 1 --seed 1) >"$work/run.log" 2>&1 || { cat "$work/run.log" >&2; exit 1; }
head -c 8 "$work/out.png" | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a' || { echo "error: the installed tool wrote no PNG" >&2; exit 1; }
echo "pack-check: installed stylize stylised 64 px, 3 iterations in $(since "$t") s: $(grep '^wrote ' "$work/run.log")"

# A command from the diagnostics assembly (ImageMetrics), from the installed tool.
(cd "$work" && "$work/tools/stylize" metrics "$work/out.png") >"$work/metrics.txt" 2>&1 || { cat "$work/metrics.txt" >&2; exit 1; }
grep -q '^metrics .* checkerboard=[0-9.]* speckle=[0-9.]*' "$work/metrics.txt" || { echo "error: 'stylize metrics' from the installed tool:" >&2; cat "$work/metrics.txt" >&2; exit 1; }
echo "pack-check: installed stylize metrics (diagnostics assembly): $(head -1 "$work/metrics.txt")"

# 3. A console project that only references the library package.
t=$(now)
mkdir -p "$work/consumer"
cat >"$work/consumer/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="stylize-artifacts" value="$artifacts" />
  </packageSources>
</configuration>
XML
cat >"$work/consumer/Consumer.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <ImplicitUsings>enable</ImplicitUsings>
    <Nullable>enable</Nullable>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="StyleTransfer" Version="$version" />
  </ItemGroup>
</Project>
XML
cat >"$work/consumer/Program.cs" <<'CS'
using static TorchSharp.torch;

// Loading libtorch is what fails on Debian 12 without the package's buildTransitive fix.
using Tensor x = arange(6, float32).reshape(2, 3);
using Tensor y = matmul(x, x.t());
string onnx = Path.Combine(AppContext.BaseDirectory, "models", "ResNet18.onnx");
Console.WriteLine($"consumer: libtorch {__version__}, x·xᵀ trace {y.trace().item<float>()}, StyleTransfer {typeof(StyleTransfer.Models.ModelDownloader).Assembly.GetName().Version}, ResNet18.onnx {(File.Exists(onnx) ? "present" : "missing")}");
return File.Exists(onnx) ? 0 : 1;
CS
(cd "$work/consumer" && dotnet run -c Release) >"$work/consumer.log" 2>&1 || { cat "$work/consumer.log" >&2; exit 1; }
grep -q 'trace 55, .*ResNet18.onnx present' "$work/consumer.log" || { cat "$work/consumer.log" >&2; exit 1; }
echo "pack-check: consumer project built and ran in $(since "$t") s: $(grep '^consumer:' "$work/consumer.log")"
