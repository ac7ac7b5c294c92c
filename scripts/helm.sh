#!/usr/bin/env bash
# helm.sh — build Helm (for the chart's tests in deploy/helm) once and
# print the binary's path. `go install` builds it from the Go module
# proxy, outside moat's go.mod, into
# ${XDG_CACHE_HOME:-~/.cache}/moat/helm-VERSION/helm (about 80 s on two
# idle cores), reused afterwards.
set -euo pipefail
version=v4.3.2
out="${XDG_CACHE_HOME:-$HOME/.cache}/moat/helm-$version"
if [ ! -x "$out/helm" ]; then
  mkdir -p "$out"
  start=$(date +%s)
  echo "helm.sh: building Helm $version (once; cached in $out)" >&2
  GOBIN="$out" GOFLAGS=-trimpath go install "helm.sh/helm/v4/cmd/helm@$version" >&2
  echo "helm.sh: built in $(( $(date +%s) - start ))s" >&2
fi
echo "$out/helm"
