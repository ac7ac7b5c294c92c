package coordinator

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/moatmesh/moat/coordinator/store"
)

// authenticator is the coordinator's OIDC relying party: authorization
// code flow with PKCE (S256), state bound to the browser by a cookie, nonce
// checked, ID token verified by go-oidc. The embedded provider is reached
// through exactly the same code, only over an in-process transport.
type authenticator struct {
	s        *Server
	issuer   string
	clientID string
	secret   string
	redirect string
	client   *http.Client // for discovery, JWKS and the token exchange
	embedded bool         // the IdP is the embedded provider
	idp      http.Handler // the embedded provider, mounted at /idp
	closeIdP func()
	health   *idpHealth // idphealth.go
	// scopes and emailClaim are the configured ones for an external IdP,
	// the defaults for the embedded provider.
	scopes     []string
	emailClaim string

	mu struct {
		sync.Mutex
		provider *oidc.Provider // discovered lazily: the IdP may be us
	}
}

// claims are the ID token claims the coordinator reads.
type claims struct {
	Subject       string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified *bool    `json:"email_verified"`
	Name          string   `json:"name"`
	AMR           []string `json:"amr"`
	ACR           string   `json:"acr"`
	AuthTime      int64    `json:"auth_time"`
	Groups        []string `json:"-"`
	Admin         bool     `json:"moat_admin"` // honoured from the embedded provider only
}

func newAuthenticator(ctx context.Context, s *Server) (*authenticator, error) {
	a := &authenticator{
		s:        s,
		issuer:   s.cfg.OIDC.Issuer,
		clientID: s.cfg.OIDC.ClientID,
		secret:   s.cfg.OIDC.ClientSecret,
		redirect: strings.TrimSuffix(s.cfg.PublicURL, "/") + "/oidc/callback",
		client:   &http.Client{Timeout: 15 * time.Second},
		closeIdP: func() {},
	}
	if a.issuer == "" {
		if err := a.startEmbedded(ctx); err != nil {
			return nil, err
		}
		a.scopes, a.emailClaim = OIDCConfig{}.scopes(), "email"
		if s.cfg.IdPRecheck > 0 {
			a.scopes = append(a.scopes, "offline_access") // a refresh token to re-check with
		}
		a.health = newIdPHealth(nil)
		return a, nil
	}
	a.scopes, a.emailClaim = s.cfg.OIDC.scopes(), s.cfg.OIDC.EmailClaim
	if s.cfg.IdPRecheck > 0 && !slices.Contains(a.scopes, "offline_access") {
		s.log.Warn("IdP re-checks are on but --oidc-scopes lacks offline_access: most identity providers then send no refresh token, and people are not re-checked (see docs/identity.md)")
	}
	if err := a.checkExternal(ctx); err != nil {
		return nil, err
	}
	a.health = newIdPHealth(a.watchExternal)
	return a, nil
}

// checkExternal checks the external IdP at start (CheckIdP) and keeps
// its discovery for sign-ins: a coordinator that could sign nobody in
// does not start.
func (a *authenticator) checkExternal(ctx context.Context) error {
	cfg := a.s.cfg.OIDC
	res, err := CheckIdP(ctx, a.client, cfg, a.redirect)
	if err != nil {
		return fmt.Errorf("identity provider %s: %w", a.issuer, err)
	}
	if len(res.UnlistedScopes) > 0 {
		a.s.log.Warn("the identity provider does not list these scopes as supported; if sign-ins fail, remove them from --oidc-scopes",
			"scopes", strings.Join(res.UnlistedScopes, " "))
	}
	a.s.log.Info("identity provider checked", "issuer", res.Issuer, "client_credentials", res.Credentials)
	_, err = a.provider(ctx)
	return err
}

func (a *authenticator) close() {
	a.health.close()
	a.closeIdP()
}

// provider discovers the IdP on first use and keeps the result.
func (a *authenticator) provider(ctx context.Context) (*oidc.Provider, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.provider != nil {
		return a.mu.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, a.client), a.issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OIDC issuer %s: %w", a.issuer, err)
	}
	a.mu.provider = p
	return p, nil
}

func (a *authenticator) oauth2(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID: a.clientID, ClientSecret: a.secret, RedirectURL: a.redirect,
		Endpoint: p.Endpoint(), Scopes: a.scopes,
	}
}

// authURL is where the browser goes to sign in for login session id.
func (a *authenticator) authURL(ctx context.Context, id, nonce, verifier string) (string, error) {
	p, err := a.provider(ctx)
	if err != nil {
		return "", err
	}
	return a.oauth2(p).AuthCodeURL(id, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// exchange turns the authorization code into verified claims, and the
// refresh token the IdP sent with them ("" when none).
func (a *authenticator) exchange(ctx context.Context, code, nonce, verifier string) (*claims, string, error) {
	p, err := a.provider(ctx)
	if err != nil {
		return nil, "", err
	}
	ctx = oidc.ClientContext(ctx, a.client)
	tok, err := a.oauth2(p).Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, "", fmt.Errorf("exchange code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return nil, "", errors.New("the IdP returned no ID token")
	}
	c, err := a.verify(ctx, raw, nonce)
	return c, tok.RefreshToken, err
}

// verify checks an ID token (issuer, audience, expiry, signature, and that
// it carries this sign-in's nonce) and returns its claims.
func (a *authenticator) verify(ctx context.Context, raw, nonce string) (*claims, error) {
	c, idt, err := a.verifyToken(ctx, raw)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal([]byte(idt.Nonce), []byte(nonce)) {
		return nil, errors.New("ID token nonce does not match this sign-in")
	}
	return c, nil
}

// verifyToken checks an ID token (issuer, audience, expiry, signature)
// and returns its claims; the nonce is the caller's to check.
func (a *authenticator) verifyToken(ctx context.Context, raw string) (*claims, *oidc.IDToken, error) {
	p, err := a.provider(ctx)
	if err != nil {
		return nil, nil, err
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: a.clientID, Now: a.s.cfg.Now}).Verify(oidc.ClientContext(ctx, a.client), raw)
	if err != nil {
		return nil, nil, fmt.Errorf("verify ID token: %w", err)
	}
	c, err := a.readClaims(idt)
	return c, idt, err
}

// readClaims reads the claims the coordinator uses from a verified ID
// token.
func (a *authenticator) readClaims(idt *oidc.IDToken) (*claims, error) {
	var c claims
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("read ID token claims: %w", err)
	}
	c.Admin = c.Admin && a.embedded
	var all map[string]any
	if err := idt.Claims(&all); err == nil {
		a.readExtra(&c, all)
	}
	return &c, nil
}

// readExtra reads the configured groups and email claims from all.
func (a *authenticator) readExtra(c *claims, all map[string]any) {
	c.Groups = stringList(all[a.s.cfg.OIDC.GroupsClaim])
	if claim := a.emailClaim; claim != "email" {
		c.Email, _ = all[claim].(string)
	}
}

func stringList(v any) []string {
	var out []string
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
	case string:
		if v != "" {
			out = []string{v}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// admit checks the claims against the configured admission rules and
// returns a message for the person when they are refused.
func (a *authenticator) admit(c *claims) error {
	cfg := a.s.cfg.OIDC
	if c.Subject == "" || c.Email == "" {
		return fmt.Errorf("the identity provider did not send your email address (claim %q); ask an admin to check the email scope and --oidc-email-claim", a.emailClaim)
	}
	if c.EmailVerified != nil && !*c.EmailVerified || cfg.RequireVerifiedEmail && c.EmailVerified == nil {
		return fmt.Errorf("%s is not verified at the identity provider; verify it there and sign in again", c.Email)
	}
	if len(cfg.AllowedDomains) > 0 {
		_, domain, _ := strings.Cut(strings.ToLower(c.Email), "@")
		if !slices.Contains(cfg.AllowedDomains, domain) {
			return fmt.Errorf("%s is not in a domain allowed to use moat; ask an admin", c.Email)
		}
	}
	if len(cfg.AllowedGroups) > 0 && !intersects(c.Groups, cfg.AllowedGroups) {
		return fmt.Errorf("%s is not in a group allowed to use moat; ask an admin", c.Email)
	}
	return nil
}

// mfaProven reports whether the IdP's amr proves a second factor.
func (a *authenticator) mfaProven(c *claims) bool {
	return intersects(c.AMR, a.s.cfg.OIDC.MFAMethods)
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// The browser that first continues a sign-in owns it: it gets a random
// token in a cookie (one per browser), and the session stores the token's
// hash (store.BindLoginSession: first claim wins). The callback and the
// MFA pages refuse any other browser, so a link someone else opened first
// is useless to the victim, and a link the victim opened is useless to
// whoever sent it.

const loginCookie = "moat_login"

// browserToken returns this browser's sign-in token, making one (and
// setting the cookie) when it has none.
func (a *authenticator) browserToken(w http.ResponseWriter, r *http.Request) string {
	name := cookieName(loginCookie, a.s.secureCookies(), true)
	if c, err := r.Cookie(name); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	tok := randomString()
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: tok, Path: "/", HttpOnly: true,
		Secure: a.s.secureCookies(), SameSite: http.SameSiteLaxMode, MaxAge: int(a.s.cfg.LoginTTL.Seconds()),
	})
	return tok
}

// bound reports whether r comes from the browser that owns ls.
func (a *authenticator) bound(r *http.Request, ls *store.LoginSession) bool {
	c, err := r.Cookie(cookieName(loginCookie, a.s.secureCookies(), true))
	return err == nil && len(ls.BrowserHash) > 0 && hmac.Equal(hashSecret(c.Value), ls.BrowserHash)
}
