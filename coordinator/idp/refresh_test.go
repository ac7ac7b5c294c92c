package idp

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// refresh uses refresh token rt once, as a relying party re-checking its
// user does.
func (e *env) refresh(r *rp, rt string) (*oauth2.Token, error) {
	return r.cfg.TokenSource(e.ctx, &oauth2.Token{RefreshToken: rt}).Token()
}

func oauthCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

func TestRefreshToken(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("carol@example.com", false, "ml")
	b, r := e.browser(), e.rp(rpID, rpSecret)
	r.cfg.Scopes = append(r.cfg.Scopes, "offline_access")
	tok, idt, _ := e.exchange(r, e.signIn(b, r, "carol@example.com", secret))
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token with offline_access")
	}

	next, err := e.refresh(r, tok.RefreshToken)
	if err != nil || next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: %v (rotated: %t)", err, next != nil && next.RefreshToken != tok.RefreshToken)
	}
	raw, _ := next.Extra("id_token").(string)
	if !strings.Contains(raw, ".") {
		t.Error("the refresh answer carries no ID token")
	}
	if _, err := e.refresh(r, tok.RefreshToken); oauthCode(err) != "invalid_grant" {
		t.Errorf("a spent refresh token: %v; want invalid_grant", err)
	}
	if _, err := e.refresh(e.rp("other", "x"), next.RefreshToken); err == nil {
		t.Error("another client used the refresh token")
	}

	u, err := e.st.IdPUserByEmail(e.ctx, "carol@example.com")
	if err != nil || u.ID != idt.Subject {
		t.Fatal(u, err)
	}
	third, err := e.refresh(r, next.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteIdPUser(e.ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.refresh(r, third.RefreshToken); oauthCode(err) != "invalid_grant" {
		t.Errorf("refresh of a deleted user: %v; want invalid_grant", err)
	}
}

// A store that fails is not a user who is gone: the answer is 503, never
// invalid_grant, so that a relying party disables nobody.
func TestRefreshStoreFailure(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("dan@example.com", false)
	b, r := e.browser(), e.rp(rpID, rpSecret)
	r.cfg.Scopes = append(r.cfg.Scopes, "offline_access")
	tok, _, _ := e.exchange(r, e.signIn(b, r, "dan@example.com", secret))
	e.st.Close()
	_, err := e.refresh(r, tok.RefreshToken)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != 503 || re.ErrorCode == "invalid_grant" {
		t.Fatalf("refresh with the store down: %v; want 503", err)
	}
}
