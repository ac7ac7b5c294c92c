package idp

import (
	"crypto/sha256"
	"crypto/subtle"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// idTokenLifetime is how long an ID token is valid: long enough to carry
// it to the relying party, no longer.
const idTokenLifetime = 5 * time.Minute

// opClient is a registered Client as op sees it.
type opClient struct {
	c          Client
	secretHash [32]byte // SHA-256 of the secret, compared in constant time
	loginURL   string   // absolute URL of the sign-in page, without the id
}

func newOpClient(c Client, loginURL string) *opClient {
	return &opClient{c: c, secretHash: sha256.Sum256([]byte(c.Secret)), loginURL: loginURL}
}

func (c *opClient) public() bool { return c.c.Secret == "" }

// secretOK reports whether secret is the client's, in constant time.
func (c *opClient) secretOK(secret string) bool {
	h := sha256.Sum256([]byte(secret))
	return !c.public() && subtle.ConstantTimeCompare(h[:], c.secretHash[:]) == 1
}

func (c *opClient) GetID() string                    { return c.c.ID }
func (c *opClient) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *opClient) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }
func (c *opClient) LoginURL(id string) string        { return c.loginURL + "?authRequestID=" + id }
func (c *opClient) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeBearer
}
func (c *opClient) IDTokenLifetime() time.Duration { return idTokenLifetime }
func (c *opClient) DevMode() bool                  { return false }
func (c *opClient) ClockSkew() time.Duration       { return 0 }

// IsScopeAllowed allows the groups scope besides the standard ones.
func (c *opClient) IsScopeAllowed(scope string) bool { return scope == ClaimGroups }

// IDTokenUserinfoClaimsAssertion puts the user's claims in the ID token
// itself, so the relying party needs no userinfo call.
func (c *opClient) IDTokenUserinfoClaimsAssertion() bool { return true }

// ApplicationType is web (confidential) with a secret, native otherwise.
// Native clients get op's loopback port leniency; CreateAuthRequest
// enforces exact redirect URIs on top.
func (c *opClient) ApplicationType() op.ApplicationType {
	if c.public() {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}

func (c *opClient) AuthMethod() oidc.AuthMethod {
	if c.public() {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic // client_secret_post is accepted too
}

func (c *opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}

func (c *opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
