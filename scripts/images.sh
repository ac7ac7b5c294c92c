#!/usr/bin/env bash
# images.sh OUT VERSION — build the moat-coordinator and moat-node
# container images (`make images`) and save each as an OCI archive in OUT:
# OUT/moat-coordinator-VERSION.oci.tar and OUT/moat-node-VERSION.oci.tar.
#
# Each image is FROM scratch (deploy/docker/*.Dockerfile): the static
# binary (scripts/build-static.sh, as `make release` builds it), the
# host's CA certificates, /etc/passwd and /etc/group with the non-root
# user moat (65532:65532), a state directory it owns, an empty /tmp, and
# the org.opencontainers.image.* labels (version, revision, source).
# Nothing is pulled: no registry is needed.
#
# Needs a running Docker engine (docker build; DOCKER_HOST is honoured)
# and skopeo (docker save's archive → OCI archive). Images are for this
# machine's architecture (GOARCH=… to choose another; the engine must be
# able to build for it). They are tagged IMAGE_PREFIX/moat-…:TAG, the
# names the Helm chart and deploy/compose/compose.yaml use (IMAGE_PREFIX
# defaults to ghcr.io/moatmesh; TAG is VERSION with any character a tag
# cannot hold turned into "-").
set -euo pipefail
out=${1:?usage: images.sh OUT VERSION}
version=${2:?usage: images.sh OUT VERSION}
root=$(cd "$(dirname "$0")/.." && pwd)
docker=${DOCKER:-docker}
prefix=${IMAGE_PREFIX:-ghcr.io/moatmesh}
arch=${GOARCH:-$(go env GOARCH)}
tag=$(printf '%s' "$version" | tr -c 'A-Za-z0-9_.-' '-')
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
certs=${CA_CERTIFICATES:-/etc/ssl/certs/ca-certificates.crt}
[ -s "$certs" ] || { echo "images.sh: no CA certificates at $certs (apt-get install ca-certificates)" >&2; exit 1; }
command -v skopeo >/dev/null || { echo "images.sh: skopeo is needed to write OCI archives (apt-get install skopeo)" >&2; exit 1; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# stage CMD: the build context of CMD's image in $work/CMD.
stage() {
	local ctx=$work/$1
	mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/ssl/certs" "$ctx/state"
	mkdir -m 1777 "$ctx/rootfs/tmp"
	"$root/scripts/build-static.sh" "$1" linux "$arch" "$version" "$ctx/rootfs/usr/local/bin/$1"
	install -m 0644 "$certs" "$ctx/rootfs/etc/ssl/certs/ca-certificates.crt"
	printf 'root:x:0:0:root:/root:/sbin/nologin\nmoat:x:65532:65532:moat:/nonexistent:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
	printf 'root:x:0:\nmoat:x:65532:\n' >"$ctx/rootfs/etc/group"
	chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group"
}

for cmd in moat-coordinator moat-node; do
	echo "images.sh: $prefix/$cmd:$tag (linux/$arch)"
	stage "$cmd"
	"$docker" build -q --platform "linux/$arch" -f "$root/deploy/docker/${cmd#moat-}.Dockerfile" \
		--build-arg VERSION="$version" --build-arg REVISION="$revision" \
		-t "$prefix/$cmd:$tag" "$work/$cmd" >/dev/null
	"$docker" save -o "$work/$cmd.docker.tar" "$prefix/$cmd:$tag"
	rm -f "$out/$cmd-$tag.oci.tar"
	skopeo --insecure-policy copy -q "docker-archive:$work/$cmd.docker.tar" "oci-archive:$out/$cmd-$tag.oci.tar:$tag"
	echo "images.sh: $out/$cmd-$tag.oci.tar"
done
