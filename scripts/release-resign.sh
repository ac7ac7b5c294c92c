#!/usr/bin/env bash
# release-resign.sh OUT VERSION — sign a release again, unchanged, before
# its manifest and APT Release expire (docs/release.md): SHA256SUMS and
# install.sh get new signatures with a new date and expiry, and OUT/apt a
# new Release (Date, Valid-Until) over the same packages. Nothing is
# rebuilt, so every SHA-256 stays the same.
#
# MOAT_RELEASE_KEY=path is the release key (as for `make release`);
# MOAT_RELEASE_VALID (default 90d) the new validity.
set -euo pipefail
out=${1:?usage: release-resign.sh OUT VERSION}
version=${2:?usage: release-resign.sh OUT VERSION}
key=${MOAT_RELEASE_KEY:?set MOAT_RELEASE_KEY to the release key}
valid=${MOAT_RELEASE_VALID:-90d}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$root/internal/tools/release" && go build -o "$work/release" .)

# The signatures must be the release key's before they are replaced.
"$work/release" verify -pub "$out/minisign.pub" "$out/SHA256SUMS" "$out/install.sh"
(cd "$out" && sha256sum --quiet -c SHA256SUMS)
"$work/release" sign -key "$key" -version "$version" -valid "$valid" "$out/SHA256SUMS" "$out/install.sh"
if [ -d "$out/apt/pool" ]; then
	mapfile -t debs < <(find "$out/apt/pool" -name '*.deb' | LC_ALL=C sort)
	"$work/release" apt -key "$key" -valid "$valid" -out "$out/apt" "${debs[@]}"
fi
echo "release-resign.sh: $out ($version) signed again, valid for $valid"
