#!/usr/bin/env bash
# Builds the documentation of both modules, Tensors and NormalizingFlows, into one static website
# in OUTDIR: swift-docc-plugin's combined documentation (DocC's `merge`), transformed for static
# hosting, so a plain file server (or GitHub Pages) can serve it.
#
# Usage: scripts/build-docs.sh OUTDIR [HOSTING_BASE_PATH]
#   HOSTING_BASE_PATH: the URL path the site is served under (default /; "/flows" for
#   https://example.org/flows/).
# The site's start page is OUTDIR/documentation/index.html, linking both modules.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUTDIR [HOSTING_BASE_PATH]" >&2
  exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
swift package --allow-writing-to-directory "$out" generate-documentation \
  --enable-experimental-combined-documentation --target Tensors --target NormalizingFlows \
  --transform-for-static-hosting --hosting-base-path "${2:-/}" --output-path "$out"
echo "documentation site: $out (start page: documentation/index.html)"
