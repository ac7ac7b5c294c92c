package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

func testIdPGrants(t *testing.T, s Store) {
	c := ctx(t)
	must(t, s.SetIdPGrant(c, "u1", []byte("sealed-1"), at(0)))
	must(t, s.SetIdPGrant(c, "u2", []byte("sealed-2"), at(0)))
	must(t, s.RecordIdPCheck(c, "u1", at(time.Hour), store.IdPCheckOK, []byte("sealed-1"), []byte("sealed-1b")))
	gs, err := s.IdPGrants(c)
	must(t, err)
	same(t, len(gs), 2, "grants")
	same(t, gs[0].UserID, "u2", "the never checked grant first")
	g, err := s.IdPGrant(c, "u1")
	must(t, err)
	same(t, *g, store.IdPGrant{UserID: "u1", Refresh: []byte("sealed-1b"), Updated: at(time.Hour), Checked: at(time.Hour), Result: store.IdPCheckOK}, "a checked grant")

	// A sign-in's newer token is not replaced by a re-check that started
	// with the older one.
	must(t, s.SetIdPGrant(c, "u1", []byte("signed-in"), at(2*time.Hour)))
	must(t, s.RecordIdPCheck(c, "u1", at(2*time.Hour), store.IdPCheckOK, []byte("sealed-1b"), []byte("sealed-1c")))
	g, err = s.IdPGrant(c, "u1")
	must(t, err)
	same(t, string(g.Refresh), "signed-in", "the token after a stale rotation")

	must(t, s.DeleteIdPGrant(c, "u1"))
	_, err = s.IdPGrant(c, "u1")
	wantErr(t, err, store.ErrNotFound, "a deleted grant")
}

func testIdPRefreshTokens(t *testing.T, s Store) {
	c, now := ctx(t), at(0)
	u := &store.IdPUser{Email: "rt@example.com"}
	must(t, s.CreateIdPUser(c, u))
	rt := &store.IdPRefreshToken{Hash: hash("rt1"), Subject: u.ID, ClientID: "cl", Scopes: []string{"openid", "offline_access"},
		AMR: []string{"pwd", "otp", "mfa"}, AuthTime: now, Expires: at(time.Hour)}
	must(t, s.CreateIdPRefreshToken(c, rt, now, 2))
	got, err := s.IdPRefreshToken(c, hash("rt1"), now)
	must(t, err)
	same(t, got, rt, "a refresh token read back")
	_, err = s.IdPRefreshToken(c, hash("rt1"), at(time.Hour))
	wantErr(t, err, store.ErrNotFound, "an expired refresh token")

	// Of two replicas spending one token at once, one wins.
	var wg sync.WaitGroup
	wins := make(chan error, 2)
	for range 2 {
		wg.Go(func() { wins <- s.TakeIdPRefreshToken(c, hash("rt1"), now) })
	}
	wg.Wait()
	close(wins)
	n := 0
	for err := range wins {
		if err == nil {
			n++
		} else {
			wantErr(t, err, store.ErrNotFound, "the losing spend")
		}
	}
	same(t, n, 1, "spends that won")

	must(t, s.CreateIdPRefreshToken(c, &store.IdPRefreshToken{Hash: hash("rt2"), Subject: u.ID, Expires: at(time.Hour)}, now, 2))
	must(t, s.DeleteIdPUser(c, u.ID))
	_, err = s.IdPRefreshToken(c, hash("rt2"), now)
	wantErr(t, err, store.ErrNotFound, "the refresh token of a deleted user")
	_, err = s.IdPUser(c, u.ID)
	wantErr(t, err, store.ErrNotFound, "a deleted user")
	wantErr(t, s.DeleteIdPUser(c, u.ID), store.ErrNotFound, "deleting a deleted user")
}
