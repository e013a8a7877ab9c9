#!/usr/bin/env bash
# The screenshots in docs/web.md: the browser test (tests/StyleTransfer.Web.Tests, BrowserTests) walked
# on real photographs at 384 px, saving the page mid-run and finished. Needs /usr/bin/chromium.
# Usage: scripts/web-screenshots.sh CONTENT STYLE [OUT_DIR (default docs)]
set -euo pipefail
cd "$(dirname "$0")/.."
content=$(realpath "$1"); style=$(realpath "$2"); out=$(realpath "${3:-docs}")
dotnet build tests/StyleTransfer.Web.Tests -c Release >/dev/null
STYLIZE_WEB_SCREENSHOTS="$out" STYLIZE_WEB_CONTENT="$content" STYLIZE_WEB_STYLE="$style" STYLIZE_WEB_SIZE=384 \
    dotnet test tests/StyleTransfer.Web.Tests -c Release --no-build --filter "FullyQualifiedName~BrowserTests"
ls -l "$out"/web-running.png "$out"/web-done.png
