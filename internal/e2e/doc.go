// Package e2e holds the end-to-end tests that start the whole system in
// one process: a coordinator with its embedded identity provider and
// SQLite, GPU nodes over the userspace netstack in front of stand-in
// inference servers, and a person's device, all talking real OIDC,
// WireGuard and HTTP. The variants that need the kernel (TUN devices, a
// stock wireguard-go) run in network namespaces as root.
//
// Its non-test files are the harness those tests share with cmd/moat's
// tests of the real client: System (a coordinator with Policy in force)
// and Node (a GPU node that can be stopped and restarted from its state
// directory).
package e2e
