#!/usr/bin/env bash
# dex.sh — build Dex (for the real-IdP sign-in test, `make test-dex`) once
# and print the binary's path. Dex is built from its own module,
# internal/tools/dex, so its dependencies stay out of moat's go.mod; the
# binary is cached outside the repository, in
# ${XDG_CACHE_HOME:-~/.cache}/moat/dex-VERSION/dex, and reused while
# VERSION (the pseudo-version pinned in that go.mod) is unchanged.
#
#   dex.sh             build when not cached, print the path
#   dex.sh --if-built  print the path when cached, else fail (no build)
set -euo pipefail
cd "$(dirname "$0")/../internal/tools/dex"
version=$(go list -m -f '{{.Version}}' github.com/dexidp/dex)
out="${XDG_CACHE_HOME:-$HOME/.cache}/moat/dex-$version"
if [ ! -x "$out/dex" ] && [ "${1:-}" = --if-built ]; then
  exit 1
fi
if [ ! -x "$out/dex" ]; then
  mkdir -p "$out"
  start=$(date +%s)
  echo "dex.sh: building Dex $version (once; cached in $out)" >&2
  go build -trimpath -o "$out/dex.tmp" github.com/dexidp/dex/cmd/dex
  mv "$out/dex.tmp" "$out/dex"
  echo "dex.sh: built in $(( $(date +%s) - start ))s" >&2
fi
echo "$out/dex"
