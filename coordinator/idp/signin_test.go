package idp

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/moatmesh/moat/coordinator/mfa"
)

// idClaims are the ID token claims the coordinator reads.
type idClaims struct {
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Name          string   `json:"name"`
	Groups        []string `json:"groups"`
	Admin         bool     `json:"moat_admin"`
	AMR           []string `json:"amr"`
	ACR           string   `json:"acr"`
	AuthTime      int64    `json:"auth_time"`
}

// exchange redeems code as the relying party and verifies the ID token
// with go-oidc against the provider's discovery document and JWKS.
func (e *env) exchange(r *rp, code string) (*oauth2.Token, *oidc.IDToken, *oidc.Provider) {
	e.t.Helper()
	prov, err := oidc.NewProvider(e.ctx, e.issuer())
	if err != nil {
		e.t.Fatal(err)
	}
	r.cfg.Endpoint = prov.Endpoint()
	tok, err := r.cfg.Exchange(e.ctx, code, oauth2.VerifierOption(r.verifier))
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		e.t.Fatal("no id_token in the token response")
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: r.cfg.ClientID}).Verify(e.ctx, raw)
	if err != nil {
		e.t.Fatalf("verify id token: %v", err)
	}
	if idt.Nonce != r.nonce {
		e.t.Fatalf("nonce %q, want %q", idt.Nonce, r.nonce)
	}
	return tok, idt, prov
}

func TestSignIn(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("Alice@Example.com", true, "ml-research", "support")
	u, err := e.st.IdPUserByEmail(e.ctx, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	b, r := e.browser(), e.rp(rpID, rpSecret)
	before := e.clock.now().Add(-time.Second)
	tok, idt, prov := e.exchange(r, e.signIn(b, r, "alice@example.com", secret))

	if idt.Issuer != e.issuer() || idt.Subject != u.ID || !slices.Equal(idt.Audience, []string{rpID}) {
		t.Errorf("iss %q sub %q aud %v; want %q %q [%s]", idt.Issuer, idt.Subject, idt.Audience, e.issuer(), u.ID, rpID)
	}
	if d := time.Until(idt.Expiry); d <= 0 || d > idTokenLifetime+time.Minute {
		t.Errorf("id token expires in %v", d)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Email != "alice@example.com" || !c.EmailVerified || c.Name != "Alice Example" || !c.Admin || c.ACR != ACR {
		t.Errorf("claims %+v", c)
	}
	if !slices.Equal(c.Groups, []string{"ml-research", "support"}) {
		t.Errorf("groups %v", c.Groups)
	}
	for _, m := range []string{"pwd", "otp", "mfa"} {
		if !slices.Contains(c.AMR, m) {
			t.Errorf("amr %v lacks %q", c.AMR, m)
		}
	}
	if at := time.Unix(c.AuthTime, 0); at.Before(before.Truncate(time.Second)) || at.After(e.clock.now().Add(time.Second)) {
		t.Errorf("auth_time %v, want about now", at)
	}
	if tok.RefreshToken != "" {
		t.Error("a refresh token was issued")
	}
	info, err := prov.UserInfo(e.ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != u.ID || info.Email != "alice@example.com" {
		t.Errorf("userinfo %+v, %v", info, err)
	}
	// The code works once.
	if _, err := r.cfg.Exchange(e.ctx, "x"+tok.AccessToken, oauth2.VerifierOption(r.verifier)); err == nil {
		t.Error("a made-up code was accepted")
	}
}

func TestCodeWorksOnce(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("bob@example.com", false)
	b, r := e.browser(), e.rp(rpID, rpSecret)
	code := e.signIn(b, r, "bob@example.com", secret)
	e.exchange(r, code)
	if _, err := r.cfg.Exchange(e.ctx, code, oauth2.VerifierOption(r.verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("second exchange: %v; want invalid_grant", err)
	}
}

func TestWrongVerifierOrSecret(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("bob@example.com", false)
	for name, mutate := range map[string]func(*rp){
		"wrong verifier":      func(r *rp) { r.verifier = oauth2.GenerateVerifier() },
		"wrong client secret": func(r *rp) { r.cfg.ClientSecret = "nope" },
	} {
		t.Run(name, func(t *testing.T) {
			b, r := e.browser(), e.rp(rpID, rpSecret)
			code := e.signIn(b, r, "bob@example.com", secret)
			e.clock.advance(mfa.Period)
			mutate(r)
			if _, err := r.cfg.Exchange(e.ctx, code, oauth2.VerifierOption(r.verifier)); err == nil {
				t.Fatal("exchange succeeded")
			}
		})
	}
}

func TestPublicClientSignIn(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("carol@example.com", false)
	b, r := e.browser(), e.rp(publicID, "")
	_, idt, _ := e.exchange(r, e.signIn(b, r, "carol@example.com", secret))
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	if c.Admin || len(c.Groups) != 0 || c.Groups == nil {
		t.Errorf("non-admin without groups: %+v (groups must be an empty list)", c)
	}
}

func TestPagesAreLockedDown(t *testing.T) {
	e := newEnv(t)
	b, r := e.browser(), e.rp(rpID, rpSecret)
	pg := e.start(b, r)
	h := pg.Header
	if h.Get("Content-Security-Policy") != contentSecurityPolicy || h.Get("Cache-Control") != "no-store" ||
		h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers %v", h)
	}
	if strings.Contains(pg.body, "<script") || strings.Contains(pg.body, "style=") {
		t.Error("page has inline script or style")
	}
	css := b.get(e.issuer() + "/static/style.css")
	css.expect(t, http.StatusOK, "body")
	b.get(e.issuer()+"/end_session").expect(t, http.StatusOK, "You are signed out")
}
