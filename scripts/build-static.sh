#!/usr/bin/env bash
# build-static.sh CMD GOOS GOARCH VERSION OUT — one static moat binary
# (./cmd/CMD, CGO off, VERSION stamped) written to OUT. `make release`
# (release.sh) and `make images` (images.sh) build with it, so the
# binaries in releases and images are made the same way.
set -euo pipefail
cmd=${1:?usage: build-static.sh CMD GOOS GOARCH VERSION OUT}
goos=${2:?} goarch=${3:?} version=${4:?} out=${5:?}
root=$(cd "$(dirname "$0")/.." && pwd)
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$root"
CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath \
	-ldflags "-X github.com/moatmesh/moat/internal/cli.version=$version" -o "$out" "./cmd/$cmd"
