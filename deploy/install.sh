#!/bin/sh
# moat-node installer. It is part of the release and signed with the
# release key, like SHA256SUMS; the coordinator serves it as it is, with
# its signature. The install command the coordinator prints checks that
# signature with openssl before running it (docs/install.md shows it
# unrolled), and this script then checks SHA256SUMS's signature and the
# downloaded files against SHA256SUMS, so that nothing here rests on the
# coordinator being honest: only on the release key given.
#
#   sh install.sh --coordinator URL --release-key RW… [--pin sha256//…
#       --fingerprint HEX] --key - --model NAME=URL[,…]
#
# Options:
#   --coordinator URL      the coordinator's public URL (https://…)
#   --release-key RW…      the release's minisign public key (minisign.pub)
#   --pin sha256//…        a self-signed coordinator's public-key pin (curl)
#   --fingerprint HEX      and its certificate's SHA-256 (moat-node)
#   --key moat_ek_…        enrollment key (first install only; used once).
#                          --key - reads it from the terminal without echo
#                          and --key-file FILE from a file, so that it is
#                          not on a command line or in the shell history
#   --model NAME=URL[,…]   a model to serve, repeatable (kind=, upstream=,
#                          sha256=, file= as `moat-node join` takes them)
#   --lockdown host|service|off   nftables lockdown (default: keep what was
#                          chosen, else host; docs/lockdown.md)
#   --lockdown-dns, --lockdown-ntp, --lockdown-allow, --lockdown-dhcp,
#   --lockdown-upstream, --lockdown-service-user, --lockdown-service-cgroup
#                          as `moat-node join` takes them (kept for re-runs)
#   --no-systemd           run the node with nohup even where systemd runs
#   --foreground           without systemd: run the node in the foreground
#   --allow-downgrade      install a release older than the installed one
#   --uninstall [--purge]  remove what this script added (--purge: the state too)
#
# Re-running it upgrades in place: new binary, restart, state and settings
# kept, no new key needed. Options not given keep their previous values.
# The release manifest (SHA256SUMS.minisig's signed trusted comment:
# version, date, expiry) must not have expired, and its version must not
# be lower than the installed one (--allow-downgrade overrides that), so
# that whoever serves the download cannot hand out an older signed
# release (docs/release.md, "Rollback protection").
#
# Test and packaging knobs (environment): MOAT_PREFIX (default /usr/local;
# the binary goes to $MOAT_PREFIX/bin), MOAT_ETC (default /etc/moat-node),
# MOAT_STATE (default /var/lib/moat-node), MOAT_UNIT_DIR (default
# /etc/systemd/system), MOAT_USER (default moat-node: the system user the
# node runs as, created if missing), MOAT_NO_USER=1 (no system user; the
# node runs as root), MOAT_RUN_DIR (default /run/moat-node) and MOAT_LOG_DIR (default
# /var/log/moat-node): root's pid file and the log without systemd.
set -eu

PREFIX=${MOAT_PREFIX:-/usr/local}
ETC=${MOAT_ETC:-/etc/moat-node}
STATE=${MOAT_STATE:-/var/lib/moat-node}
UNIT_DIR=${MOAT_UNIT_DIR:-/etc/systemd/system}
BIN=$PREFIX/bin/moat-node
ENV_FILE=$ETC/env
UNIT=$UNIT_DIR/moat-node.service
# Root's own files live in root-owned 0700 directories, never in the
# service user's state dir, where a symlink could turn root's write into
# the user's.
RUN_DIR=${MOAT_RUN_DIR:-/run/moat-node}
LOG_DIR=${MOAT_LOG_DIR:-/var/log/moat-node}
PIDFILE=$RUN_DIR/moat-node.pid
LOG=$LOG_DIR/moat-node.log
LEGACY_PIDFILE=$STATE/moat-node.pid # before: in the state dir; read, never trusted
SVC_USER=${MOAT_USER:-moat-node}
CAPS=+net_admin,+net_bind_service

say() { printf 'moat-install: %s\n' "$*"; }
die() { printf 'moat-install: error: %s\n' "$*" >&2; exit 1; }

usage() {
	echo "usage: install.sh --coordinator URL --release-key RW… [--pin sha256//… --fingerprint HEX] --key moat_ek_…|--key -|--key-file FILE --model NAME=URL [--model …] [--lockdown host|service|off] [--lockdown-…] [--no-systemd|--foreground] | --uninstall [--purge]"
}

# The moat-node settings install.sh passes through, kept in the env file
# as MOAT_<NAME> (moat-node reads them from there).
LD_NAMES='lockdown-dns lockdown-ntp lockdown-allow lockdown-dhcp lockdown-upstream lockdown-service-user lockdown-service-cgroup'

# parse_args sets COORDINATOR, RELEASE_KEY, PIN, FINGERPRINT, KEY,
# MODELS, LOCKDOWN, ACTION, PURGE, MODE and LD_*. COORDINATOR holds the
# coordinator's public URL; PIN (sha256//BASE64 of its public key) and
# FINGERPRINT (SHA-256 of its certificate) pin a self-signed certificate
# and are empty for a CA-issued one.
parse_args() {
	COORDINATOR='' RELEASE_KEY='' PIN='' FINGERPRINT=''
	KEY='' MODELS='' LOCKDOWN='' ACTION=install PURGE='' MODE=auto ALLOW_DOWNGRADE=''
	while [ $# -gt 0 ]; do
		case $1 in
		--coordinator=*) COORDINATOR=${1#*=} ;;
		--coordinator) need_value "$@"; COORDINATOR=$2; shift ;;
		--release-key=*) RELEASE_KEY=${1#*=} ;;
		--release-key) need_value "$@"; RELEASE_KEY=$2; shift ;;
		--pin=*) PIN=${1#*=} ;;
		--pin) need_value "$@"; PIN=$2; shift ;;
		--fingerprint=*) FINGERPRINT=${1#*=} ;;
		--fingerprint) need_value "$@"; FINGERPRINT=$2; shift ;;
		--key=*) set_key "${1#*=}" ;;
		--key) need_value "$@"; set_key "$2"; shift ;;
		--key-file=*) read_key_file "${1#*=}" ;;
		--key-file) need_value "$@"; read_key_file "$2"; shift ;;
		--lockdown-*=*) set_ld "${1%%=*}" "${1#*=}" ;;
		--lockdown-*) need_value "$@"; set_ld "$1" "$2"; shift ;;
		--model=*) add_model "${1#*=}" ;;
		--model) need_value "$@"; add_model "$2"; shift ;;
		--lockdown=*) LOCKDOWN=${1#*=} ;;
		--lockdown) need_value "$@"; LOCKDOWN=$2; shift ;;
		--uninstall) ACTION=uninstall ;;
		--purge) PURGE=1 ;;
		--allow-downgrade) ALLOW_DOWNGRADE=1 ;;
		--no-systemd) MODE='nohup' ;;
		--foreground) MODE=foreground ;;
		-h | --help) usage; exit 0 ;;
		*) die "unknown option $1 (see --help)" ;;
		esac
		shift
	done
	check_args
}

need_value() { [ $# -ge 2 ] || die "$1 needs a value"; }

# set_key takes --key's value; "-" reads it from the terminal.
set_key() {
	if [ "$1" = - ]; then read_key_tty; else KEY=$1; fi
}

read_key_tty() {
	{ : </dev/tty; } 2>/dev/null || die "--key -: there is no terminal to read the key from; use --key-file FILE"
	printf 'moat-install: enrollment key (not shown): ' >/dev/tty
	stty -echo </dev/tty 2>/dev/null || true
	IFS= read -r KEY </dev/tty || KEY=''
	stty echo </dev/tty 2>/dev/null || true
	echo >/dev/tty
}

read_key_file() {
	if [ ! -f "$1" ] || [ ! -r "$1" ]; then die "--key-file $1: not a readable file"; fi
	IFS= read -r KEY <"$1" || [ -n "$KEY" ] || die "--key-file $1: empty"
}

# set_ld stores a --lockdown-NAME value as LD_NAME (dashes as _).
set_ld() {
	name=${1#--}
	case " $LD_NAMES " in
	*" $name "*) ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	case $2 in
	*[!A-Za-z0-9._:/,@+-]*) die "$1 $2: only letters, digits and ._:/,@+- are allowed" ;;
	esac
	eval "LD_$(ld_var "$name")=\$2"
}

# ld_var lockdown-service-user prints LOCKDOWN_SERVICE_USER.
ld_var() { echo "$1" | tr 'a-z-' 'A-Z_'; }

# add_model checks one --model value and appends it to MODELS. Values end
# up in the environment file and on the command line, so only a plain set
# of characters is accepted.
add_model() {
	case $1 in
	*=*) ;;
	*) die "--model $1: want NAME=http://127.0.0.1:PORT[,kind=openai|ollama]" ;;
	esac
	case $1 in
	*[!A-Za-z0-9._:/=,@+-]*) die "--model $1: only letters, digits and ._:/=,@+- are allowed" ;;
	esac
	MODELS="${MODELS:+$MODELS }--model=$1"
}

check_args() {
	check_origin
	case $KEY in
	'') ;;
	moat_ek_*[!A-Za-z0-9_-]* | *[!A-Za-z0-9_-]*) die "--key: not an enrollment key (want moat_ek_…)" ;;
	moat_ek_?*) ;;
	*) die "--key: not an enrollment key (want moat_ek_…)" ;;
	esac
	case $LOCKDOWN in
	'' | off | host | service) ;;
	*) die "--lockdown $LOCKDOWN: want host, service or off" ;;
	esac
}

# check_origin checks where the install comes from: the coordinator and
# the release key are needed to install (the install command has them),
# not to uninstall.
check_origin() {
	case $COORDINATOR in
	*[!]A-Za-z0-9._:/[-]*) die "--coordinator $COORDINATOR: not a URL (https://HOST[:PORT])" ;;
	esac
	case $RELEASE_KEY in
	*[!A-Za-z0-9+/=]*) die "--release-key: not a minisign public key (want the RW… line of minisign.pub)" ;;
	esac
	case $PIN in
	sha256//*[!A-Za-z0-9+/=]* | sha256//) die "--pin $PIN: want sha256//BASE64" ;;
	'' | sha256//*) ;;
	*) die "--pin $PIN: want sha256//BASE64" ;;
	esac
	case $FINGERPRINT in
	*[!0-9a-f]*) die "--fingerprint: want the certificate's SHA-256 in lowercase hex" ;;
	esac
	[ "$ACTION" = uninstall ] && return 0
	[ -n "$COORDINATOR" ] || die "give --coordinator URL (the install command the coordinator prints has it)"
	[ -n "$RELEASE_KEY" ] || die "give --release-key RW… (the install command has it; it is the RW… line of the release's minisign.pub)"
}

check_host() {
	[ "$(id -u)" -eq 0 ] || die "run as root: curl … | sudo sh -s -- …"
	[ "$(uname -s)" = Linux ] || die "moat-node runs on Linux only"
	case $(uname -m) in
	x86_64 | amd64) ARCH=amd64 ;;
	aarch64 | arm64) ARCH=arm64 ;;
	*) die "no moat-node build for $(uname -m) (amd64 and arm64 only)" ;;
	esac
	for c in curl sha256sum openssl; do
		command -v "$c" >/dev/null 2>&1 || die "$c is needed (apt-get install curl coreutils openssl)"
	done
	if [ "$MODE" = auto ]; then
		if [ -d /run/systemd/system ]; then MODE='systemd'; else MODE='nohup'; fi
	fi
}

# fetch URL FILE downloads over the same verified TLS the script came over:
# with a self-signed coordinator, curl pins its public key during the
# handshake (-k only skips the CA check the pin replaces).
fetch() {
	if [ -n "$PIN" ]; then
		curl -fsS --proto =https -k --pinnedpubkey "$PIN" -o "$2" "$1"
	else
		curl -fsS --proto =https,http -o "$2" "$1"
	fi
}

check_transport() {
	case $COORDINATOR in
	'') die "give --coordinator URL (the install command the coordinator prints has it)" ;;
	https://*) ;;
	http://127.0.0.1[:/]* | http://127.0.0.1 | http://localhost[:/]* | http://localhost | http://\[::1\]*) ;;
	*) die "the coordinator's public URL $COORDINATOR is plain HTTP off loopback; serve it over TLS so the download can be trusted" ;;
	esac
}

# download fetches SHA256SUMS and its signature, moat-node and its unit
# into TMP, and refuses anything the release key did not sign.
download() {
	name=moat-node-linux-$ARCH
	say "downloading SHA256SUMS, $name and moat-node.service from $COORDINATOR${PIN:+ (certificate pinned: $PIN)}"
	for f in SHA256SUMS SHA256SUMS.minisig "$name" moat-node.service; do
		fetch "$COORDINATOR/download/$f" "$TMP/$f" || die "could not download $f from $COORDINATOR"
	done
	release_pem
	verify_sig "$TMP/SHA256SUMS"
	check_manifest "$TMP/SHA256SUMS"
	check_sum "$TMP/$name" "$name"
	check_sum "$TMP/moat-node.service" moat-node.service
	mv "$TMP/$name" "$TMP/moat-node"
}

# check_sum FILE NAME refuses FILE unless its SHA-256 is NAME's in SHA256SUMS.
check_sum() {
	want=$(awk -v f="$2" '$2 == f || $2 == "*" f { print $1; exit }' "$TMP/SHA256SUMS")
	case $want in
	'' | *[!0-9a-f]*) die "SHA256SUMS has no valid entry for $2; refusing to install" ;;
	esac
	[ ${#want} -eq 64 ] || die "SHA256SUMS entry for $2 is malformed; refusing to install"
	got=$(sha256sum "$1" | awk '{ print $1 }')
	[ "$got" = "$want" ] || die "checksum mismatch for $2: got $got, SHA256SUMS says $want; refusing to install"
	say "checksum ok: $2 sha256 $got"
}

# release_pem writes the release key (minisign's base64: "Ed", an 8-byte
# key id, the 32-byte Ed25519 key) as the PEM openssl reads: the DER
# prefix of an Ed25519 SubjectPublicKeyInfo, in base64, then the key.
release_pem() {
	printf '%s\n' "$RELEASE_KEY" | openssl base64 -d -A >"$TMP/release.key" 2>/dev/null || true
	is_minisign "$TMP/release.key" 42 ||
		die "--release-key $RELEASE_KEY: not a minisign public key (want the RW… line of minisign.pub)"
	{
		echo '-----BEGIN PUBLIC KEY-----'
		echo "MCowBQYDK2VwAyEA$(tail -c 32 "$TMP/release.key" | openssl base64 -A)"
		echo '-----END PUBLIC KEY-----'
	} >"$TMP/release.pem"
}

# is_minisign FILE SIZE: FILE is SIZE bytes and starts with "Ed" (Ed25519).
is_minisign() {
	[ "$(wc -c <"$1" | tr -d ' ')" = "$2" ] && [ "$(head -c 2 "$1")" = Ed ]
}

# key_id FILE prints the key id in FILE (bytes 2-9, little-endian) as
# minisign prints it.
key_id() {
	od -An -tx1 -j2 -N8 "$1" | awk '{ for (i = NF; i > 0; i--) printf "%s", toupper($i) }'
}

# verify_sig FILE refuses FILE unless FILE.minisig is the release key's
# minisign signature of it, in the legacy Ed25519 form (over the file
# itself) that the release tool writes and openssl verifies.
verify_sig() {
	sed -n 2p "$1.minisig" | openssl base64 -d -A >"$TMP/sig.bin" 2>/dev/null || true
	is_minisign "$TMP/sig.bin" 74 ||
		die "$(basename "$1").minisig: not a minisign Ed25519 signature; refusing to install"
	keyid=$(key_id "$TMP/release.key")
	sigid=$(key_id "$TMP/sig.bin")
	[ "$sigid" = "$keyid" ] ||
		die "$(basename "$1") is signed by key id $sigid, not by the release key (id $keyid); refusing to install"
	tail -c 64 "$TMP/sig.bin" >"$TMP/sig"
	openssl pkeyutl -verify -pubin -inkey "$TMP/release.pem" -rawin -in "$1" -sigfile "$TMP/sig" >/dev/null 2>&1 ||
		die "$(basename "$1"): BAD SIGNATURE: it is not what the release key signed; refusing to install"
	say "signature ok: $(basename "$1") signed by the release key $RELEASE_KEY"
}

# check_manifest FILE checks the release manifest, FILE.minisig's trusted
# comment "file:NAME version:V date:T expires:T": its signature by the
# release key (over the file's signature and the comment, which
# verify_sig left in $TMP/sig), its file name, its expiry, and that its
# version is not lower than the installed binary's.
check_manifest() {
	mf_name=$(basename "$1")
	mf_comment=$(sed -n 3p "$1.minisig")
	case $mf_comment in
	"trusted comment: "*) mf_comment=${mf_comment#trusted comment: } ;;
	*) die "$mf_name.minisig has no trusted comment (the release manifest); refusing to install" ;;
	esac
	sed -n 4p "$1.minisig" | openssl base64 -d -A >"$TMP/global.sig" 2>/dev/null || true
	[ "$(wc -c <"$TMP/global.sig" | tr -d ' ')" = 64 ] ||
		die "$mf_name.minisig: no signature of its manifest; refusing to install"
	{ cat "$TMP/sig"; printf '%s' "$mf_comment"; } >"$TMP/manifest"
	openssl pkeyutl -verify -pubin -inkey "$TMP/release.pem" -rawin -in "$TMP/manifest" -sigfile "$TMP/global.sig" >/dev/null 2>&1 ||
		die "$mf_name: the release manifest ($mf_comment) is not what the release key signed: BAD SIGNATURE; refusing to install"
	[ "$(manifest_field file)" = "$mf_name" ] || die "the release manifest is for $(manifest_field file), not $mf_name; refusing to install"
	RELEASE_VERSION=$(manifest_field version)
	mf_expires=$(manifest_field expires)
	case $RELEASE_VERSION in
	'' | *[!A-Za-z0-9._+-]*) die "the release manifest has no valid version; refusing to install" ;;
	esac
	case $mf_expires in
	[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z) ;;
	*) die "the release manifest has no expiry (signed before releases expired?); sign the release again with make release; refusing to install" ;;
	esac
	mf_now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	# Fails closed: anything but a clear "not yet" (awk's exit 0) refuses.
	if ! awk -v now="$mf_now" -v until="$mf_expires" 'BEGIN { exit !(now <= until) }'; then
		die "the release manifest ($RELEASE_VERSION) expired at $mf_expires: an old release may be replayed; ask for the current one (the release key's holder signs it again); refusing to install"
	fi
	say "release manifest ok: $RELEASE_VERSION, signed $(manifest_field date), valid until $mf_expires"
	check_downgrade
}

# manifest_field NAME prints NAME's value in the manifest $mf_comment.
manifest_field() {
	printf '%s\n' "$mf_comment" | tr ' ' '\n' | sed -n "s/^$1://p" | head -n 1
}

# check_downgrade refuses a release older than the installed moat-node,
# unless --allow-downgrade. A binary without a release version (a
# development build) is not compared.
check_downgrade() {
	[ -x "$BIN" ] || return 0
	mf_installed=$("$BIN" version 2>/dev/null | awk '{ print $2 }')
	case $mf_installed in
	v[0-9]*) ;;
	*) say "installed moat-node ${mf_installed:-(unknown)} is not a release version; not compared with $RELEASE_VERSION"; return 0 ;;
	esac
	version_lt "$RELEASE_VERSION" "$mf_installed" || return 0
	[ -n "$ALLOW_DOWNGRADE" ] ||
		die "the release ($RELEASE_VERSION) is older than the installed moat-node ($mf_installed): refusing to downgrade (an old signed release may be replayed); --allow-downgrade installs it anyway"
	say "WARNING: downgrading moat-node from $mf_installed to $RELEASE_VERSION (--allow-downgrade)"
}

# version_lt A B: release version A sorts before B, in the order of the
# Debian packages' versions: v1.2.3-rc.1 < v1.2.3 < v1.2.3-4-gabc (git
# describe) < v1.2.10.
version_lt() {
	mf_a=$(deb_version "$1") mf_b=$(deb_version "$2")
	[ "$mf_a" != "$mf_b" ] || return 1
	if command -v dpkg >/dev/null 2>&1; then
		dpkg --compare-versions "$mf_a" lt "$mf_b"
	else
		[ "$(printf '%s\n%s\n' "$mf_a" "$mf_b" | sort -V | head -n 1)" = "$mf_a" ]
	fi
}

# deb_version maps a release version as internal/tools/release does.
deb_version() {
	printf '%s\n' "${1#v}" | sed -e 's/-\([0-9][0-9]*\)-g\([0-9a-f]*\)/+\1.g\2/' -e 's/-dirty$/+dirty/' -e 's/-/~/'
}

install_binary() {
	umask 022
	mkdir -p "$PREFIX/bin"
	cp "$TMP/moat-node" "$BIN.new"
	chmod 0755 "$BIN.new"
	mv -f "$BIN.new" "$BIN"
	say "installed $BIN ($("$BIN" version 2>/dev/null || echo 'version unknown'))"
}

ensure_user() {
	if [ "${MOAT_NO_USER:-}" = 1 ]; then
		SVC_USER=root
		say "MOAT_NO_USER=1: no system user; the node runs as root"
	elif id "$SVC_USER" >/dev/null 2>&1; then
		say "system user $SVC_USER exists"
	else
		useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$SVC_USER"
		CREATED_USER=1
		say "created system user $SVC_USER (no shell, no home)"
	fi
}

ensure_dirs() {
	umask 077
	root_dir "$ETC"
	[ ! -L "$STATE" ] || die "$STATE is a symlink; refusing to use it"
	mkdir -p "$STATE"
	chmod 0700 "$STATE"
	# Hand over what is not the service user's yet (a state dir from a
	# root install), never through a symlink or a hard link: a link the
	# service user planted must not give it a root file.
	find "$STATE" -xdev ! -type l \( -type d -o -links 1 \) ! -user "$SVC_USER" -exec chown -h "$SVC_USER:" {} +
	say "state dir $STATE (0700, owner $SVC_USER)"
}

# root_dir makes DIR a root-owned 0700 directory, refusing a symlink.
root_dir() {
	[ ! -L "$1" ] || die "$1 is a symlink; refusing to use it"
	mkdir -p "$1"
	chown root: "$1"
	chmod 0700 "$1"
}

# env_value NAME prints NAME's value from an existing environment file.
env_value() {
	[ -f "$ENV_FILE" ] || return 0
	sed -n "s/^$1=\"\\(.*\\)\"\$/\\1/p" "$ENV_FILE" | tail -n 1
}

joined() { [ -s "$STATE/node.json" ]; }

# settle_lockdown keeps a lockdown someone chose (now, or on an earlier
# run: MOAT_LOCKDOWN_CHOSEN) and moves an "off" nobody chose (every
# install before lockdown was the default wrote it) to host.
settle_lockdown() {
	prev=$(env_value MOAT_LOCKDOWN)
	if [ -n "$LOCKDOWN" ]; then
		LOCKDOWN_CHOSEN=1
	elif [ -n "$(env_value MOAT_LOCKDOWN_CHOSEN)" ]; then
		LOCKDOWN=$prev LOCKDOWN_CHOSEN=1
	elif [ "$prev" = off ]; then
		LOCKDOWN=host LOCKDOWN_CHOSEN=''
		say "NOTE: this node ran WITHOUT a lockdown because earlier versions of install.sh wrote MOAT_LOCKDOWN=\"off\" by default;"
		say "      it now gets the default, --lockdown host. Re-run with --lockdown off to keep it off deliberately."
	else
		LOCKDOWN=${prev:-host} LOCKDOWN_CHOSEN=${prev:+1}
	fi
	for name in $LD_NAMES; do
		var=$(ld_var "$name")
		eval "[ -n \"\${LD_$var:-}\" ] || LD_$var=\$(env_value MOAT_$var)"
	done
}

# settle_settings merges the options given with the previous install's.
settle_settings() {
	settle_lockdown
	[ -n "$MODELS" ] || MODELS=$(env_value MOAT_MODELS)
	if [ -n "$(env_value MOAT_CREATED_USER)" ]; then CREATED_USER=1; fi
	if joined; then
		COMMAND='run'
		[ -z "$KEY" ] || say "this host has joined before ($STATE/node.json); --key is not needed and not used"
		KEY=''
		return
	fi
	COMMAND='join'
	[ -n "$KEY" ] || die "this host has not joined yet: give --key - (it asks for the enrollment key from an admin) or --key-file FILE"
	[ -n "$MODELS" ] || die "give at least one --model NAME=http://127.0.0.1:PORT"
}

# write_env writes the environment file atomically, 0600 root.
write_env() {
	umask 077
	{
		echo "# moat-node settings, written by install.sh from $COORDINATOR; read by moat-node.service."
		echo "MOAT_COMMAND=\"$COMMAND\""
		echo "MOAT_COORDINATOR=\"$COORDINATOR\""
		echo "MOAT_FINGERPRINT=\"$FINGERPRINT\""
		echo "MOAT_LOCKDOWN=\"$LOCKDOWN\""
		[ -z "${LOCKDOWN_CHOSEN:-}" ] || echo "MOAT_LOCKDOWN_CHOSEN=\"1\""
		for name in $LD_NAMES; do
			var=$(ld_var "$name")
			eval "val=\${LD_$var:-}"
			[ -z "$val" ] || echo "MOAT_$var=\"$val\""
		done
		echo "MOAT_MODELS=\"$MODELS\""
		[ -z "$KEY" ] || echo "MOAT_KEY=\"$KEY\""
		[ -z "${CREATED_USER:-}" ] || echo "MOAT_CREATED_USER=\"1\""
	} >"$ENV_FILE.new"
	chmod 0600 "$ENV_FILE.new"
	mv -f "$ENV_FILE.new" "$ENV_FILE"
	say "wrote $ENV_FILE (0600): $COMMAND, lockdown $LOCKDOWN${KEY:+, enrollment key until the first join}"
}

# install_unit installs the release's moat-node.service (checked against
# SHA256SUMS) with this install's paths and user.
install_unit() {
	sed -e "s#/usr/local/bin/moat-node#$BIN#g" -e "s#/etc/moat-node/env#$ENV_FILE#g" \
		-e "s#/var/lib/moat-node#$STATE#g" -e "s#^User=.*#User=$SVC_USER#" -e "s#^Group=.*#Group=$SVC_USER#" "$TMP/moat-node.service" >"$UNIT.new"
	chmod 0644 "$UNIT.new"
	mv -f "$UNIT.new" "$UNIT"
	say "installed $UNIT (hardened; capabilities CAP_NET_ADMIN CAP_NET_BIND_SERVICE, and CAP_SETPCAP to drop them for stdio MCP servers)"
	systemctl daemon-reload
	systemctl enable moat-node >/dev/null 2>&1
	systemctl restart moat-node
	say "systemctl daemon-reload, enable and (re)start moat-node"
}

# start_direct runs the node without systemd: with nohup in the background
# (pid file and log in root's own directories), or in the foreground. The
# settings, the enrollment key among them, reach it through the
# environment, as the unit's EnvironmentFile= does, never its command line.
start_direct() {
	stop_direct
	[ "$SVC_USER" = root ] || command -v setpriv >/dev/null 2>&1 ||
		die "setpriv (util-linux) is needed to run the node as $SVC_USER without systemd"
	set -a
	# shellcheck disable=SC1090 # written above by write_env
	. "$ENV_FILE"
	set +a
	# shellcheck disable=SC2086 # MODELS is a list of words
	set -- "$BIN" "$COMMAND" "--state-dir=$STATE" "--coordinator=$COORDINATOR" \
		"--coordinator-fingerprint=$FINGERPRINT" "--lockdown=$LOCKDOWN" $MODELS
	if [ "$SVC_USER" != root ]; then
		set -- setpriv --reuid="$SVC_USER" --regid="$(id -g "$SVC_USER")" --clear-groups --inh-caps="-all,$CAPS" \
			--ambient-caps="$CAPS" --bounding-set="-all,$CAPS" --no-new-privs "$@"
	fi
	if [ "$MODE" = foreground ]; then
		say "running moat-node $COMMAND in the foreground as $SVC_USER (Ctrl-C stops it)"
		rm -rf "$TMP"
		exec "$@"
	fi
	root_dir "$RUN_DIR"
	root_dir "$LOG_DIR"
	[ ! -L "$LOG" ] || die "$LOG is a symlink; refusing to write to it"
	nohup "$@" </dev/null >>"$LOG" 2>&1 &
	echo $! >"$PIDFILE"
	unset MOAT_KEY
	say "started moat-node $COMMAND with nohup as $SVC_USER: pid $(cat "$PIDFILE"), log $LOG"
}

# running_pid prints the pid of the node started with nohup, if it runs
# and is the node: the installed binary (or its replaced copy), run by
# the service user. A pid file is never enough to kill a process.
running_pid() {
	for f in "$PIDFILE" "$LEGACY_PIDFILE"; do
		[ -f "$f" ] || continue
		pid=$(head -c 20 "$f")
		case $pid in '' | *[!0-9]*) continue ;; esac
		if is_node "$pid"; then
			echo "$pid"
			return 0
		fi
	done
}

# is_node PID: PID runs $BIN (or a copy an upgrade replaced) as $SVC_USER.
is_node() {
	exe=$(readlink "/proc/$1/exe" 2>/dev/null) || return 1
	case $exe in
	"$BIN" | "$BIN (deleted)") ;;
	*) return 1 ;;
	esac
	uid=$(awk '/^Uid:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null) || return 1
	[ "$uid" = "$(id -u "$SVC_USER" 2>/dev/null)" ]
}

# stop_direct stops a node started with nohup: TERM, then KILL after 15 s.
stop_direct() {
	pid=$(running_pid)
	if [ -n "$pid" ]; then
		say "stopping moat-node (pid $pid)"
		kill "$pid" 2>/dev/null || true
		i=0
		# Until reaped, the pid cannot name another process: wait for it.
		while kill -0 "$pid" 2>/dev/null && [ $i -lt 15 ]; do sleep 1; i=$((i + 1)); done
		! is_node "$pid" || kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$PIDFILE" "$LEGACY_PIDFILE"
}

node_alive() {
	if [ "$MODE" = systemd ]; then
		case $(systemctl show -p SubState --value moat-node 2>/dev/null) in
		auto-restart | failed | dead | exited) return 1 ;;
		esac
	else
		[ -n "$(running_pid)" ] || starting
	fi
}

# starting: the process this run just started with nohup is on its way
# to $BIN (the shell's fork, then nohup and setpriv exec in turn): alive,
# though not yet is_node. It is our own child and not a zombie; a node
# that died stays a zombie child until the script exits, so it does not
# count. Without this, a check right after the start read a node that had
# not yet exec'd as dead and reported a join failure with an empty log.
starting() {
	[ -f "$PIDFILE" ] || return 1
	pid=$(head -c 20 "$PIDFILE")
	case $pid in '' | *[!0-9]*) return 1 ;; esac
	awk -v parent="$$" '/^State:/ { s = $2 } /^PPid:/ { p = $2 } END { exit !(p == parent && s != "Z") }' \
		"/proc/$pid/status" 2>/dev/null
}

show_log() {
	if [ "$MODE" = systemd ]; then
		journalctl -u moat-node -n 20 --no-pager >&2 || true
	else
		tail -n 20 "$LOG" >&2 || true
	fi
}

# wait_joined waits up to 60 s for the first join to write the node's
# state, then drops the enrollment key from the environment file.
wait_joined() {
	i=0
	while ! joined; do
		node_alive || { show_log; die "moat-node join failed (log above); the enrollment key may be expired or used"; }
		[ $i -lt 60 ] || { show_log; die "moat-node has not joined after 60 s (log above)"; }
		sleep 1
		i=$((i + 1))
	done
	say "joined the mesh: $(sed -n 's/.*"deviceId": *"\([^"]*\)".*/node \1/p' "$STATE/node.json")"
	COMMAND='run' KEY=''
	write_env
}

do_install() {
	check_transport
	TMP=$(mktemp -d)
	trap 'rm -rf "$TMP"' EXIT
	download
	settle_settings
	ensure_user
	ensure_dirs
	if [ "$MODE" = systemd ]; then
		stop_direct
	elif [ -f "$UNIT" ]; then
		die "moat-node is installed as a systemd unit ($UNIT); run --uninstall first to switch to --no-systemd"
	fi
	install_binary
	write_env
	if [ "$MODE" = systemd ]; then install_unit; else start_direct; fi
	[ "$COMMAND" = run ] || wait_joined
	explain_lockdown
	say "done: moat-node is running ($MODE); re-run this command to upgrade, --uninstall to remove"
}

# explain_lockdown says what the lockdown now blocks, and how the host
# stays manageable.
explain_lockdown() {
	case $LOCKDOWN in
	off)
		say "WARNING: LOCKDOWN OFF (chosen with --lockdown off): every process on this host may send anywhere;"
		say "         nothing stops a model server or a generated script from sending prompts out."
		;;
	service)
		say "lockdown service: the model server's user/cgroup may use loopback only (no internet, no LAN, not the mesh);"
		say "  the model ports answer only on loopback; the rest of the host is left alone."
		;;
	host)
		say "lockdown host: this host may now send only to loopback, the coordinator ($COORDINATOR), its mesh peers,"
		say "  its DNS resolvers and NTP servers (the system's unless --lockdown-dns/--lockdown-ntp), DHCP if it holds a lease,"
		say "  and what --lockdown-allow adds. Everything else outbound is refused: the internet, package mirrors, the LAN."
		say "  Inbound: only WireGuard and, over the mesh, the guard and the policy's network grants; the model ports"
		say "  answer only on loopback. NEW SSH OR MONITORING CONNECTIONS FROM OUTSIDE THE MESH ARE REFUSED (open ones stay):"
		say "  reach this host over the mesh with a policy grant such as { \"src\": [\"group:admins\"], \"dst\": [\"tag:gpu:22\"] }."
		say "  'moat-node lockdown status' shows the rules; docs/lockdown.md says what is blocked and why."
		;;
	esac
}

do_uninstall() {
	CREATED_USER=$(env_value MOAT_CREATED_USER)
	if [ -f "$UNIT" ]; then
		systemctl disable --now moat-node >/dev/null 2>&1 || true
		rm -f "$UNIT"
		systemctl daemon-reload 2>/dev/null || true
		say "stopped and removed $UNIT"
	fi
	stop_direct
	if [ -x "$BIN" ]; then
		"$BIN" lockdown off 2>/dev/null || say "could not remove the lockdown; 'nft delete table inet moat' does it by hand"
		rm -f "$BIN"
		say "removed $BIN"
	fi
	[ ! -f "$ENV_FILE" ] || { rm -f "$ENV_FILE"; say "removed $ENV_FILE"; }
	rmdir "$ETC" "$RUN_DIR" 2>/dev/null || true
	if [ -d "$LOG_DIR" ] && [ ! -L "$LOG_DIR" ]; then rm -rf "$LOG_DIR"; fi
	remove_user
	remove_state
}

remove_user() {
	[ "$CREATED_USER" = 1 ] || return 0
	if [ -d "$STATE" ] && [ ! -L "$STATE" ]; then chown -R -h root: "$STATE"; fi
	userdel "$SVC_USER" 2>/dev/null || true
	say "removed system user $SVC_USER"
}

remove_state() {
	[ -d "$STATE" ] || return 0
	if [ -n "$PURGE" ]; then
		rm -rf "$STATE"
		say "removed $STATE (--purge)"
	else
		say "kept $STATE (the node's key, credential and audit spool); --uninstall --purge removes it"
	fi
}

main() {
	parse_args "$@"
	check_host
	if [ "$ACTION" = uninstall ]; then do_uninstall; else do_install; fi
}

main "$@"
