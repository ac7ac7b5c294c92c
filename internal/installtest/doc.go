// Package installtest runs the coordinator's /install.sh for real: a
// coordinator (the built binary, self-signed TLS), a fresh host, an
// "internet" host (the host's default gateway, counting every packet that
// reaches it) and a device, each in a network namespace on one bridge.
// The host installs, joins, upgrades and uninstalls moat-node with the one
// command an admin copies, and the node runs as the unit runs it: a
// non-root user with CAP_NET_ADMIN and CAP_NET_BIND_SERVICE, TUN, and the
// default lockdown. It has tests only; they need root and skip otherwise.
//
// The script's test knobs keep it off the real machine: MOAT_PREFIX,
// MOAT_ETC, MOAT_STATE, MOAT_RUN_DIR and MOAT_LOG_DIR point into a temp
// dir, MOAT_USER=nobody stands in for the moat-node user, and --no-systemd
// starts the node with nohup (setpriv, as the unit does).
package installtest
