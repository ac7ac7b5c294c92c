// Package coordinator is moat's control plane: OIDC sign-in with MFA, the
// embedded identity provider, device and node identities, the store
// (SQLite or PostgreSQL), policy storage, netmap fan-out, audit ingest and
// the install script. It never imports node.
package coordinator
