#!/usr/bin/env bash
# release.sh — build a signed release into OUT (`make release`: bin/release).
#
#   release.sh OUT VERSION
#
# OUT gets moat-coordinator and moat-node for linux amd64/arm64, moat for
# linux amd64/arm64, darwin amd64/arm64 and windows amd64 (static, with
# VERSION stamped and the commit recorded in the build info), install.sh
# and moat-node.service (what /install.sh runs and installs), a CycloneDX
# SBOM of the module graph (sbom.cdx.json), SHA256SUMS over all of them,
# minisign signatures of SHA256SUMS and install.sh (FILE.minisig) whose
# signed trusted comment is the release manifest (version, date, expiry:
# install.sh refuses an expired or older release), and minisign.pub.
# OUT/apt is a signed APT repository of the Debian packages moat-coordinator,
# moat-node and moat (linux amd64/arm64; docs/release.md): its Release is
# signed with an OpenPGP key derived from the release key, whose public
# half is OUT/apt/moat-archive-keyring.gpg (and .asc).
#
# MOAT_RELEASE_VALID (default 90d) is how long the manifest and the APT
# Release stay valid: sign again before then (scripts/release-resign.sh).
#
# MOAT_RELEASE_KEY=path signs with that minisign secret key (offline; an
# encrypted key reads its password from MOAT_RELEASE_KEY_PASSWORD).
# Without it the release is signed with a throwaway key, printed loudly:
# good for a test or a local build, never for a release others install.
# Point `moat-coordinator serve --release-dir OUT --release-key KEY` at it.
set -euo pipefail
out=${1:?usage: release.sh OUT VERSION}
version=${2:?usage: release.sh OUT VERSION}
root=$(cd "$(dirname "$0")/.." && pwd)
tools=$root/internal/tools/release

valid=${MOAT_RELEASE_VALID:-90d}

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$tools" && go build -o "$work/release" .)
rel() { "$work/release" "$@"; }

# The key: the offline release key, or a throwaway one made here and
# removed with $work when this script ends.
key=${MOAT_RELEASE_KEY:-}
if [ -z "$key" ]; then
	rel keygen "$work/throwaway" >/dev/null
	key=$work/throwaway.key
fi

# build CMD GOOS GOARCH: one static binary, named CMD-GOOS-GOARCH[.exe].
build() {
	local name=$1-$2-$3
	[ "$2" != windows ] || name=$name.exe
	echo "release.sh: $name"
	"$root/scripts/build-static.sh" "$1" "$2" "$3" "$version" "$out/$name"
}

for arch in amd64 arm64; do
	build moat-coordinator linux $arch
	build moat-node linux $arch
	build moat linux $arch
	build moat darwin $arch
done
build moat windows amd64

cp "$root/deploy/install.sh" "$out/install.sh"
cp "$root/deploy/systemd/moat-node.service" "$out/moat-node.service"

# The SBOM of the module graph that built the binaries (cyclonedx-gomod,
# a tool of internal/tools/release: built once into Go's cache).
echo "release.sh: sbom.cdx.json (CycloneDX)"
(cd "$tools" && go tool cyclonedx-gomod mod -json -licenses=false -output "$out/sbom.cdx.json" "$root")
[ -s "$out/sbom.cdx.json" ] || { echo "release.sh: cyclonedx-gomod wrote no SBOM" >&2; exit 1; }

(cd "$out" && find . -maxdepth 1 -type f -printf '%f\n' | LC_ALL=C sort | xargs sha256sum -- >"$work/SHA256SUMS")
mv "$work/SHA256SUMS" "$out/SHA256SUMS"

# The Debian packages and the APT repository (internal/tools/release).
echo "release.sh: Debian packages and the APT repository in $out/apt"
rel deb -root "$root" -bin "$out" -out "$work/debs" -version "$version" >/dev/null
rel apt -key "$key" -valid "$valid" -out "$out/apt" "$work"/debs/*.deb

pub=$(rel sign -key "$key" -version "$version" -valid "$valid" "$out/SHA256SUMS" "$out/install.sh")
if [ -n "${MOAT_RELEASE_KEY:-}" ]; then
	echo "release.sh: signed with the release key $MOAT_RELEASE_KEY: $pub"
else
	cat >&2 <<EOF

  ############################################################################
  ##  NOT A RELEASE: MOAT_RELEASE_KEY is not set, so this build is signed   ##
  ##  with a THROWAWAY key that is already gone (APT repository included).  ##
  ##  It verifies only against this public key:                              ##
  ##    $pub
  ##  Sign real releases with the offline key: MOAT_RELEASE_KEY=path make release
  ############################################################################

EOF
fi
echo "release.sh: $out ($version); serve it with:"
echo "  moat-coordinator serve --release-dir $out --release-key $pub"
