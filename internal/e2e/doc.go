// Package e2e holds the end-to-end tests that start the whole system in
// one process: a coordinator with its embedded identity provider and
// SQLite, GPU nodes over the userspace netstack in front of stand-in
// inference servers, and a person's device running the real client
// library (mesh/client), all talking real OIDC, WireGuard and HTTP. The
// variants that need the kernel (TUN devices, a stock wireguard-go) run
// in network namespaces as root.
//
// Its non-test files are the harness those tests share with cmd/moat's
// and internal/uitest's tests: System (a coordinator with Policy in
// force), Node (a GPU node that can be stopped and restarted from its
// state directory), SignInDevice and StartClient (a signed-in device
// running the client).
package e2e
