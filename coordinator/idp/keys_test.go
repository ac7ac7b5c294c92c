package idp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/coordinator/store"
)

// freshStore is an empty store of its own.
func (e *env) freshStore() *store.DB {
	e.t.Helper()
	st, err := store.OpenSQLite(e.ctx, filepath.Join(e.t.TempDir(), "moat.db"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	return st
}

// kids returns the ids of the key that signs and of the key set.
func (e *env) kids(p *Provider) (string, []string) {
	e.t.Helper()
	signing, valid, err := p.keys.keys(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, k := range valid {
		ids = append(ids, k.id)
	}
	return signing.id, ids
}

// signedBy returns the key id in the header of the ID token in a sign-in.
func (e *env) signedBy(secret string) (kid, raw string) {
	e.t.Helper()
	r := e.rp(rpID, rpSecret)
	tok, _, _ := e.exchange(r, e.signIn(e.browser(), r, "alice@example.com", secret))
	raw = tok.Extra("id_token").(string)
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		e.t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID, raw
}

// TestSigningKeyPersists: the key lives in the database, so a restarted
// provider (or another replica) signs with the same key, and no key file
// is written to the data directory.
func TestSigningKeyPersists(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("alice@example.com", false)
	r := e.rp(rpID, rpSecret)
	code := e.signIn(e.browser(), r, "alice@example.com", secret)
	before, _ := e.kids(e.p)
	again := e.newProvider()
	if after, _ := e.kids(again); after != before {
		t.Fatalf("key id changed across restart: %s, %s", before, after)
	}
	e.exchange(r, code)
	if _, err := os.Stat(filepath.Join(e.dataDir, legacyKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a key file was written to the data dir: %v", err)
	}
}

// TestSigningKeyImported: the key file an earlier version kept in the
// data directory is imported on first start, and refused when others
// may read it.
func TestSigningKeyImported(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	path := filepath.Join(dir, legacyKeyFile)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	st := e.freshStore()
	if err := EnsureSigningKey(e.ctx, st, e.box, dir, e.clock.now()); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("loose key file: err = %v", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := EnsureSigningKey(e.ctx, st, e.box, dir, e.clock.now()); err != nil {
		t.Fatal(err)
	}
	k, _, err := (&keyring{ks: st, box: e.box, now: e.clock.now}).keys(e.ctx)
	if err != nil || k.id != keyID(&priv.PublicKey) {
		t.Fatalf("signing key %v, %v; want the imported %s", k, err, keyID(&priv.PublicKey))
	}
}

// TestRotateSigningKey: after a rotation the new key signs, the old one
// stays in the key set until the tokens it signed have expired, and the
// next rotation after that prunes it.
func TestRotateSigningKey(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("alice@example.com", false)
	old, oldToken := e.signedBy(secret)

	kid, err := RotateSigningKey(e.ctx, e.st, e.box, e.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	if signing, set := e.kids(e.p); signing != kid || !slices.Contains(set, old) || !slices.Contains(set, kid) {
		t.Fatalf("after rotation: signing %s, key set %v; want %s signing and %s kept", signing, set, kid, old)
	}
	// A token signed before the rotation still verifies against the
	// provider's published key set.
	e.clock.advance(time.Second)
	prov, err := oidc.NewProvider(e.ctx, e.issuer())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prov.Verifier(&oidc.Config{ClientID: rpID}).Verify(e.ctx, oldToken); err != nil {
		t.Fatalf("a token signed before the rotation: %v", err)
	}
	e.clock.advance(mfa.Period) // a fresh TOTP code
	if got, _ := e.signedBy(secret); got != kid {
		t.Fatalf("new token signed by %s, want the new key %s", got, kid)
	}

	e.clock.advance(RetiredKeyKept)
	if _, set := e.kids(e.p); slices.Contains(set, old) {
		t.Fatalf("key set %v still holds %s after its tokens expired", set, old)
	}
	if _, err := RotateSigningKey(e.ctx, e.st, e.box, e.clock.now()); err != nil {
		t.Fatal(err)
	}
	secs, err := e.st.Secrets(e.ctx, signingKeyPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range secs {
		names = append(names, strings.TrimPrefix(s.Name, signingKeyPrefix))
	}
	if len(names) != 2 || slices.Contains(names, old) || !slices.Contains(names, kid) {
		t.Fatalf("stored keys %v; want %s pruned, %s kept and the newest", names, old, kid)
	}
}
