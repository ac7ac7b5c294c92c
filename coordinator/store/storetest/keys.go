package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

func testEnrollKeys(t *testing.T, s Store) {
	c := ctx(t)
	now := at(0)
	once := &store.EnrollKey{Hash: hash("once"), Tags: []string{"tag:gpu"}, Expiry: at(time.Hour), CreatedBy: "u_1", Created: at(-time.Hour)}
	must(t, s.CreateEnrollKey(c, once))
	if once.ID == "" {
		t.Fatal("CreateEnrollKey did not fill ID")
	}
	must(t, s.CheckEnrollKey(c, hash("once"), now))
	must(t, s.CheckEnrollKey(c, hash("once"), now)) // checking does not use it
	wantErr(t, s.CheckEnrollKey(c, hash("nope"), now), store.ErrNotFound, "check of an unknown key")
	k, err := s.UseEnrollKey(c, hash("once"), now)
	must(t, err)
	wantErr(t, s.CheckEnrollKey(c, hash("once"), now), store.ErrExhausted, "check of a used key")
	want := *once
	want.Uses = 1
	same(t, k, &want, "used key")
	_, err = s.UseEnrollKey(c, hash("once"), now)
	wantErr(t, err, store.ErrExhausted, "single-use key used twice")

	many := &store.EnrollKey{Hash: hash("many"), Reusable: true, Expiry: at(time.Hour), Created: at(-time.Minute)}
	must(t, s.CreateEnrollKey(c, many))
	for i := 1; i <= 3; i++ {
		k, err := s.UseEnrollKey(c, hash("many"), now)
		must(t, err)
		if k.Uses != i {
			t.Fatalf("reusable key: uses %d, want %d", k.Uses, i)
		}
	}
	_, err = s.UseEnrollKey(c, hash("many"), at(time.Hour))
	wantErr(t, err, store.ErrExhausted, "key at its expiry")

	must(t, s.RevokeEnrollKey(c, many.ID))
	_, err = s.UseEnrollKey(c, hash("many"), now)
	wantErr(t, err, store.ErrExhausted, "revoked key")
	wantErr(t, s.RevokeEnrollKey(c, "ek_missing"), store.ErrNotFound, "revoke missing key")
	_, err = s.UseEnrollKey(c, hash("unknown"), now)
	wantErr(t, err, store.ErrNotFound, "unknown key")
	_, err = s.UseEnrollKey(c, nil, now)
	wantErr(t, err, store.ErrNotFound, "empty hash")
	wantErr(t, s.CreateEnrollKey(c, &store.EnrollKey{Hash: hash("once")}), store.ErrConflict, "same hash twice")

	never := &store.EnrollKey{Hash: hash("never"), Created: at(0)}
	must(t, s.CreateEnrollKey(c, never))
	_, err = s.UseEnrollKey(c, hash("never"), at(1000*time.Hour))
	must(t, err)

	ks, err := s.EnrollKeys(c)
	must(t, err)
	if len(ks) != 3 || ks[0].ID != never.ID || ks[1].ID != many.ID || !ks[1].Revoked || ks[1].Uses != 3 {
		t.Fatalf("EnrollKeys: %s", show(ks))
	}
}

// testEnrollKeyRace races 20 callers for a single-use key (one wins, the
// rest get ErrExhausted) and 20 for a reusable one (all win, 20 uses).
func testEnrollKeyRace(t *testing.T, s Store) {
	const n = 20
	c := ctx(t)
	must(t, s.CreateEnrollKey(c, &store.EnrollKey{Hash: hash("once"), Expiry: at(time.Hour)}))
	must(t, s.CreateEnrollKey(c, &store.EnrollKey{Hash: hash("many"), Reusable: true, Expiry: at(time.Hour)}))
	for _, tc := range []struct {
		key  string
		wins int
	}{{"once", 1}, {"many", n}} {
		var wg sync.WaitGroup
		errs := make(chan error, n)
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				_, err := s.UseEnrollKey(c, hash(tc.key), at(0))
				errs <- err
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		wins := 0
		for err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrExhausted):
				t.Fatalf("%s: loser got %v, want ErrExhausted", tc.key, err)
			}
		}
		if wins != tc.wins {
			t.Fatalf("%s key: %d winners, want %d", tc.key, wins, tc.wins)
		}
	}
}

func testAPITokens(t *testing.T, s Store) {
	c := ctx(t)
	tok := &store.APIToken{Hash: hash("t1"), Name: "ci", CreatedBy: "u_1", Created: at(0), Expiry: at(time.Hour)}
	must(t, s.CreateAPIToken(c, tok))
	tok2 := &store.APIToken{Hash: hash("t2"), Name: "ops", Created: at(time.Second), LastUsed: at(time.Minute)}
	must(t, s.CreateAPIToken(c, tok2))
	got, err := s.APITokenByHash(c, hash("t1"))
	must(t, err)
	same(t, got, tok, "token by hash")
	all, err := s.APITokens(c)
	must(t, err)
	same(t, all, []*store.APIToken{tok2, tok}, "APITokens")
	wantErr(t, s.CreateAPIToken(c, &store.APIToken{Hash: hash("t1")}), store.ErrConflict, "same hash twice")
	must(t, s.DeleteAPIToken(c, tok.ID))
	_, err = s.APITokenByHash(c, hash("t1"))
	wantErr(t, err, store.ErrNotFound, "deleted token")
	_, err = s.APITokenByHash(c, nil)
	wantErr(t, err, store.ErrNotFound, "empty hash")
	wantErr(t, s.DeleteAPIToken(c, tok.ID), store.ErrNotFound, "delete twice")
}
