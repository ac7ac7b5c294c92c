package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

func testPasskeys(t *testing.T, s Store) {
	c := context.Background()
	a := &store.Passkey{ID: []byte("cred-a"), UserID: "u_1", Name: "laptop", Data: []byte(`{"a":1}`), SignCount: 1, Created: at(0)}
	b := &store.Passkey{ID: []byte("cred-b"), UserID: "u_1", Name: "key", Data: []byte(`{"b":1}`), Created: at(time.Minute)}
	other := &store.Passkey{ID: []byte("cred-c"), UserID: "iu_2", Name: "phone", Data: []byte(`{}`), Created: at(0)}
	for _, p := range []*store.Passkey{a, b, other} {
		must(t, s.CreatePasskey(c, p))
	}
	wantErr(t, s.CreatePasskey(c, &store.Passkey{ID: []byte("cred-a"), UserID: "u_9", Data: []byte(`{}`), Created: at(0)}),
		store.ErrConflict, "a credential id stored twice")

	counts, err := s.PasskeyCounts(c)
	must(t, err)
	if len(counts) != 2 || counts["u_1"] != 2 || counts["iu_2"] != 1 {
		t.Fatalf("passkey counts %v, want u_1: 2, iu_2: 1", counts)
	}
	got, err := s.Passkeys(c, "u_1")
	must(t, err)
	if len(got) != 2 || string(got[0].ID) != "cred-a" || string(got[1].ID) != "cred-b" {
		t.Fatalf("passkeys of u_1: %+v, want cred-a then cred-b", got)
	}
	if g := got[0]; g.Name != "laptop" || string(g.Data) != `{"a":1}` || g.SignCount != 1 || !g.Created.Equal(at(0)) || !g.LastUsed.IsZero() {
		t.Fatalf("passkey read back as %+v, want %+v", g, a)
	}

	use := &store.Passkey{Data: []byte(`{"a":2}`), SignCount: 5, LastUsed: at(time.Hour)}
	must(t, s.UsePasskey(c, "u_1", a.ID, 1, use))
	wantErr(t, s.UsePasskey(c, "u_1", a.ID, 1, use), store.ErrConflict, "a use checked against a stale counter")
	wantErr(t, s.UsePasskey(c, "iu_2", a.ID, 5, use), store.ErrNotFound, "another person's passkey")
	must(t, s.RenamePasskey(c, "u_1", a.ID, "work laptop"))
	wantErr(t, s.RenamePasskey(c, "iu_2", a.ID, "x"), store.ErrNotFound, "rename another person's passkey")
	got, err = s.Passkeys(c, "u_1")
	must(t, err)
	if g := got[0]; g.Name != "work laptop" || g.SignCount != 5 || string(g.Data) != `{"a":2}` || !g.LastUsed.Equal(at(time.Hour)) {
		t.Fatalf("after use and rename: %+v", g)
	}

	wantErr(t, s.DeletePasskey(c, "iu_2", b.ID), store.ErrNotFound, "delete another person's passkey")
	must(t, s.DeletePasskey(c, "u_1", b.ID))
	wantErr(t, s.DeletePasskey(c, "u_1", b.ID), store.ErrNotFound, "delete a deleted passkey")
	must(t, s.DeletePasskeys(c, "u_1"))
	must(t, s.DeletePasskeys(c, "u_1"))
	if got, err := s.Passkeys(c, "u_1"); err != nil || len(got) != 0 {
		t.Fatalf("after reset: %v, %v; want none", got, err)
	}
	if got, err := s.Passkeys(c, "iu_2"); err != nil || len(got) != 1 {
		t.Fatalf("another person's passkeys after a reset: %v, %v; want 1", got, err)
	}
}

// testPasskeyUseRace: of sign-ins checked against one counter value at
// once, exactly one is recorded (a cloned authenticator's replay loses).
func testPasskeyUseRace(t *testing.T, s Store) {
	c := context.Background()
	must(t, s.CreatePasskey(c, &store.Passkey{ID: []byte("k"), UserID: "u_1", Data: []byte(`{}`), SignCount: 3, Created: at(0)}))
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			errs[i] = s.UsePasskey(c, "u_1", []byte("k"), 3, &store.Passkey{Data: []byte(`{}`), SignCount: 4, LastUsed: at(time.Minute)})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Fatalf("use: %v, want nil or ErrConflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d uses against one counter won, want 1", won, n)
	}
}

func testPasskeyChallenges(t *testing.T, s Store) {
	c := context.Background()
	ch := &store.PasskeyChallenge{Hash: hash("c1"), UserID: "u_1", Purpose: "login:ls_1", Data: []byte(`{"challenge":"x"}`), Expires: at(5 * time.Minute)}
	must(t, s.CreatePasskeyChallenge(c, ch, at(0), 10))
	got, err := s.TakePasskeyChallenge(c, hash("c1"), at(time.Minute))
	must(t, err)
	if got.UserID != "u_1" || got.Purpose != "login:ls_1" || string(got.Data) != `{"challenge":"x"}` || !got.Expires.Equal(ch.Expires) {
		t.Fatalf("challenge read back as %+v, want %+v", got, ch)
	}
	_, err = s.TakePasskeyChallenge(c, hash("c1"), at(time.Minute))
	wantErr(t, err, store.ErrNotFound, "a challenge taken twice")

	must(t, s.CreatePasskeyChallenge(c, &store.PasskeyChallenge{Hash: hash("c2"), UserID: "u_1", Purpose: "p", Data: []byte("{}"), Expires: at(time.Minute)}, at(0), 10))
	_, err = s.TakePasskeyChallenge(c, hash("c2"), at(time.Minute))
	wantErr(t, err, store.ErrNotFound, "an expired challenge")

	must(t, s.CreatePasskeyChallenge(c, &store.PasskeyChallenge{Hash: hash("c3"), UserID: "u_1", Purpose: "p", Data: []byte("{}"), Expires: at(time.Minute)}, at(0), 1))
	wantErr(t, s.CreatePasskeyChallenge(c, &store.PasskeyChallenge{Hash: hash("c4"), UserID: "u_1", Purpose: "p", Data: []byte("{}"), Expires: at(time.Minute)}, at(0), 1),
		store.ErrExhausted, "a challenge over the cap")
	// Expired ones are swept and no longer count.
	must(t, s.CreatePasskeyChallenge(c, &store.PasskeyChallenge{Hash: hash("c4"), UserID: "u_1", Purpose: "p", Data: []byte("{}"), Expires: at(time.Hour)}, at(time.Minute), 1))
}

func testResetMFA(t *testing.T, s Store) {
	c := context.Background()
	u := newUser(t, s, "alice")
	u.TOTPSecret = []byte("sealed")
	must(t, s.UpdateUser(c, u))
	must(t, s.CreatePasskey(c, &store.Passkey{ID: []byte("k"), UserID: u.ID, Data: []byte(`{}`), Created: at(0)}))
	must(t, s.BeginMFAAttempt(c, u.ID, at(0), 1, time.Hour)) // one failure: locked
	wantErr(t, s.BeginMFAAttempt(c, u.ID, at(time.Second), 1, time.Hour), store.ErrExhausted, "locked out")
	must(t, s.ResetMFA(c, u.ID))
	got, err := s.User(c, u.ID)
	must(t, err)
	if got.TOTPSecret != nil || got.MFAFailures != 0 || !got.MFALockedTil.IsZero() {
		t.Fatalf("after reset: secret %q, %d failures, locked until %v", got.TOTPSecret, got.MFAFailures, got.MFALockedTil)
	}
	if keys, err := s.Passkeys(c, u.ID); err != nil || len(keys) != 0 {
		t.Fatalf("passkeys after reset: %v, %v", keys, err)
	}
	must(t, s.BeginMFAAttempt(c, u.ID, at(2*time.Second), 1, time.Hour))
	must(t, s.ClearMFAFailures(c, u.ID))
	must(t, s.BeginMFAAttempt(c, u.ID, at(3*time.Second), 1, time.Hour))
	wantErr(t, s.ResetMFA(c, "u_nobody"), store.ErrNotFound, "reset of an unknown user")
}
