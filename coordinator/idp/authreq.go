package idp

import (
	"cmp"
	"log/slog"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// authRequest is one sign-in in progress. It implements op.AuthRequest.
type authRequest struct {
	id           string
	clientID     string
	redirectURI  string
	state        string
	nonce        string
	scopes       []string
	responseType oidc.ResponseType
	responseMode oidc.ResponseMode
	challenge    *oidc.CodeChallenge
	prompt       []string
	expires      time.Time

	// Progress through the sign-in pages.
	browser  []byte    // SHA-256 of the browser cookie that opened it; nil until then
	pwUser   string    // the user whose password was verified
	pwEmail  string    // and the email they typed (the backoff's key)
	userID   string    // set with done
	authTime time.Time // set with done
	done     bool
	coded    bool   // an authorization code was issued (one per sign-in)
	method   string // the second factor's RFC 8176 method, set with done: "otp", "hwk" or "swk"
}

func (a *authRequest) GetID() string                      { return a.id }
func (a *authRequest) GetACR() string                     { return ACR }
func (a *authRequest) GetAudience() []string              { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time             { return a.authTime }
func (a *authRequest) GetClientID() string                { return a.clientID }
func (a *authRequest) GetNonce() string                   { return a.nonce }
func (a *authRequest) GetRedirectURI() string             { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.responseMode }
func (a *authRequest) GetScopes() []string                { return a.scopes }
func (a *authRequest) GetState() string                   { return a.state }
func (a *authRequest) GetSubject() string                 { return a.userID }
func (a *authRequest) Done() bool                         { return a.done }

// GetCodeChallenge returns the PKCE challenge (always S256 here).
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }

// GetAMR is the RFC 8176 methods this sign-in used: a password and a
// one-time code ("otp") or a passkey ("hwk" device-bound, "swk" synced),
// hence multi-factor. Nothing before the sign-in is done.
func (a *authRequest) GetAMR() []string {
	if !a.done {
		return nil
	}
	return []string{"pwd", cmp.Or(a.method, "otp"), "mfa"}
}

// LogValue keeps nonce, state and challenge out of the op package's logs.
func (a *authRequest) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", a.id),
		slog.String("client_id", a.clientID),
		slog.String("redirect_uri", a.redirectURI),
	)
}

// accessToken is an issued bearer token, kept for the userinfo endpoint.
type accessToken struct {
	subject  string
	clientID string
	scopes   []string
	expires  time.Time
}
