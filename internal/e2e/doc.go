// Package e2e holds the end-to-end tests that start the whole system in
// one process: a coordinator with its embedded identity provider and
// SQLite, a GPU node over the userspace netstack in front of a stand-in
// inference server, and a person's device, all talking real OIDC,
// WireGuard and HTTP.
package e2e
