package coordinator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/internal/browsertest"
)

// rawIDToken signs erin in at the provider as client (id, secret) with
// the given nonce and returns the raw ID token, as another application
// registered at the same IdP would get it.
func rawIDToken(t *testing.T, issuer, id, secret, nonce, capture string, erin *person, clk *clock) string {
	t.Helper()
	ctx := context.Background()
	prov, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: capture, Endpoint: prov.Endpoint(), Scopes: []string{"openid", "email"}}
	verifier := oauth2.GenerateVerifier()
	page, err := browsertest.New(nil).Get(cfg.AuthCodeURL("st", oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	page, _ = page.Submit(map[string]string{"email": erin.email, "password": erin.password})
	code, _ := mfa.Code(erin.totp, clk.Now())
	clk.Advance(mfa.Period)
	page, _ = page.Submit(map[string]string{"code": code})
	authCode := page.URL.Query().Get("code")
	if authCode == "" {
		t.Fatalf("no code at the capture URL %s:\n%s", page.URL, page.Body)
	}
	tok, err := cfg.Exchange(ctx, authCode, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok.Extra("id_token").(string)
}

// The coordinator refuses ID tokens meant for another application, with
// another sign-in's nonce, or expired — real tokens from a real provider.
func TestIDTokenRefusals(t *testing.T) {
	clk := newClock()
	capture := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("captured")) }))
	defer capture.Close()
	ext := startExternalIdP(t, clk)
	tc := prepareCoord(t, "", t.TempDir(), clk)
	k, _ := seal.LoadOrCreateKey(t.TempDir() + "/k")
	p, err := idp.New(context.Background(), idp.Config{
		Issuer: ext.issuer, DataDir: t.TempDir(), Box: seal.New(k), Now: clk.Now, Insecure: true,
		Clients: []idp.Client{
			{ID: "moat", Secret: "s3cret-s3cret", RedirectURIs: []string{tc.URL + "/oidc/callback", capture.URL}},
			{ID: "other-app", Secret: "other-secret", RedirectURIs: []string{capture.URL}},
		},
	}, ext.users)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ext.h = p.Handler()
	ext.ts.Start()
	if err := tc.start(t, func(c *Config) {
		c.OIDC = OIDCConfig{Issuer: ext.issuer, ClientID: "moat", ClientSecret: "s3cret-s3cret"}
	}); err != nil {
		t.Fatal(err)
	}

	link, _ := idp.AddUser(context.Background(), ext.users, "erin@example.com", "", false, nil, "http://"+ext.ts.Listener.Addr().String(), time.Hour)
	page, _ := browsertest.New(nil).Get(link)
	erin := &person{email: "erin@example.com", password: "correct horse battery staple", totp: page.Text("code")}
	page.Submit(map[string]string{"password": erin.password, "confirm": erin.password, "code": tc.code(t, erin)})
	clk.Advance(mfa.Period)

	ctx := context.Background()
	good := rawIDToken(t, ext.issuer, "moat", "s3cret-s3cret", "nonce-A", capture.URL, erin, clk)
	if _, err := tc.auth.verify(ctx, good, "nonce-A"); err != nil {
		t.Fatalf("a good token was refused: %v", err)
	}
	tc.auth.emailClaim = "sub" // the email is read from the claim named
	if c, err := tc.auth.verify(ctx, good, "nonce-A"); err != nil || c.Email != c.Subject || c.Email == "" {
		t.Fatalf("with --oidc-email-claim sub: %+v, %v", c, err)
	}
	tc.auth.emailClaim = "email"
	foreign := rawIDToken(t, ext.issuer, "other-app", "other-secret", "nonce-A", capture.URL, erin, clk)
	for name, c := range map[string]struct{ raw, nonce, want string }{
		"foreign audience": {foreign, "nonce-A", "audience"},
		"other nonce":      {good, "nonce-B", "nonce"},
		"tampered":         {good[:len(good)-4] + "AAAA", "nonce-A", "signature"},
		"garbage":          {"not.a.jwt", "nonce-A", "malformed"},
	} {
		if _, err := tc.auth.verify(ctx, c.raw, c.nonce); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %s", name, err, c.want)
		}
	}
	clk.Advance(time.Hour)
	if _, err := tc.auth.verify(ctx, good, "nonce-A"); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired token: %v", err)
	}
}
