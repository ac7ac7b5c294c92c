// Package installtest runs the coordinator's /install.sh for real: a
// coordinator (the built binary, self-signed TLS) in one network namespace
// and a fresh host in another, which installs, joins, upgrades and
// uninstalls moat-node with the one command an admin copies. It has tests
// only; they need root and skip otherwise.
//
// The script's test knobs keep it off the real machine: MOAT_PREFIX,
// MOAT_ETC and MOAT_STATE point into a temp dir, MOAT_NO_USER=1 skips the
// system user, and --no-systemd starts the node with nohup.
package installtest
