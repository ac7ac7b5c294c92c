// Package coordinator is moat's control plane: OIDC sign-in with MFA, the
// embedded identity provider, device and node identities, the store
// (SQLite or PostgreSQL), policy storage, audit ingest, the admin API,
// the web UI's backend and the install script. The netmap computation and
// fan-out are the netmap subpackage's; the store is store.DB, and each
// part that needs only a few of its methods declares them (netmap.Store,
// idp.Store, APITokenStore). It never imports node.
package coordinator
