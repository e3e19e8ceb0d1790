#!/bin/sh
# Checks that the in-repository copy of ipernity's method list (src/ipernity/methods.tsv, less its
# `#` comment lines) equals the shared one (../shared/ipernity-methods.tsv by default, or $1).
# Skips with a note when the shared file is absent (a newcomer's clone has none).
# Usage: scripts/check-methods.sh [path/to/ipernity-methods.tsv]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
copy="$root/src/ipernity/methods.tsv"
shared=${1:-"$root/../shared/ipernity-methods.tsv"}
if [ ! -f "$shared" ]; then
  echo "check-methods: $shared not found; skipped"
  exit 0
fi
if grep -v '^#' "$copy" | diff -u "$shared" - >&2; then
  echo "check-methods: src/ipernity/methods.tsv equals $shared"
else
  echo "check-methods: src/ipernity/methods.tsv differs from $shared (diff above); copy it, then run: node scripts/generate-methods.js" >&2
  exit 1
fi
