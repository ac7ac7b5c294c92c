// Package idp is moat's embedded OpenID Provider: local users who sign in
// with a password and a mandatory TOTP code, served by the coordinator
// under /idp when no external identity provider is configured. It is built
// on zitadel/oidc's op package and speaks plain OpenID Connect, so the
// coordinator signs people in through it with the same go-oidc code path
// as through any external provider.
//
// # Mounting
//
// The issuer is PUBLIC_URL + "/idp". Handler serves every path under the
// issuer's path itself (discovery, JWKS, authorize, token, userinfo,
// end_session, the sign-in and setup pages and their stylesheet), so mount
// it at that prefix without stripping it:
//
//	mux.Handle("/idp/", provider.Handler())
//
// # Protocol
//
// Only the authorization code flow is offered. Every client must use PKCE
// with S256 (public clients and confidential ones alike; OAuth 2.1), and
// a redirect_uri must equal one of the client's registered URIs exactly.
// Confidential clients authenticate at the token endpoint with
// client_secret_basic or client_secret_post. A client asking for the
// offline_access scope gets a refresh token (refresh.go): rotated on each
// use, valid 30 days, refused with invalid_grant once its user is
// deleted, so that a relying party can re-check a person. There is no
// single-sign-on session: every sign-in asks for the password and
// then a passkey or a TOTP code (passkeys.go), so auth_time is always the
// moment of this sign-in and amr is ["pwd", M, "mfa"] (RFC 8176) where M
// is "hwk" (a device-bound passkey), "swk" (a synced one) or "otp".
//
// ID tokens (RS256, valid 5 minutes) carry sub (the local user's id),
// email and email_verified (scope email), name (scope profile), groups
// (always) and moat_admin (true for admins), auth_time, amr, acr
// (see ACR) and the request's nonce.
//
// # State
//
// Users live in the coordinator's store (the Users interface). The RSA
// signing keys live there too, sealed (KeyStore, keys.go), so every
// replica signs and verifies with the same keys, across restarts and
// rotations. Protocol state that lasts minutes — sign-ins in progress,
// authorization codes, access tokens — lives in the store too (the State
// interface), keyed by the SHA-256 of each id, code or token, with an
// expiry and a cap; the form-protection and token keys are derived from
// Config.Secret. So every step of a sign-in may land on a different
// coordinator replica, and a sign-in in progress survives a restart.
//
// # Accounts
//
// AddUser creates a user, or re-issues a setup link for an existing one,
// and returns a one-time setup URL. On the setup page the person chooses
// a password and enrolls an authenticator app; the link is then spent.
// Re-issuing a link is also how an admin resets a forgotten password or a
// lost authenticator: completing setup replaces both.
//
// Passwords are hashed with argon2id (PHC string format; see
// HashPassword). TOTP secrets are sealed with Config.Box with the user's
// id as additional data. Repeated failures of the password or the code
// slow further attempts down, per account and per account and client
// address, and never lock the account (backoff.go); unknown accounts are
// answered as known ones. A correct password alone does not reset the
// count, only a complete sign-in does. Password checks that cannot get a
// hashing slot soon are refused with 503.
package idp
