package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

func testSignInBackoff(t *testing.T, s Store) {
	c := ctx(t)
	// Three free attempts, then each failure makes the next wait 1 s.
	wait := func(n int) time.Duration {
		if n <= 3 {
			return 0
		}
		return time.Second
	}
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for range 12 { // parallel attempts: only the free ones and one more are checked
		wg.Go(func() {
			ok, _, err := s.SignInAttempt(c, "acct:a", at(0), wait)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if admitted != 4 {
		t.Fatalf("%d of 12 parallel attempts admitted, want 4 (3 free, then one that starts the wait)", admitted)
	}
	ok, next, err := s.SignInAttempt(c, "acct:a", at(500*time.Millisecond), wait)
	must(t, err)
	if ok || !next.Equal(at(time.Second)) {
		t.Fatalf("attempt during the wait: ok %v, wait until %v; want refused until %v", ok, next, at(time.Second))
	}
	ok, next, err = s.SignInAttempt(c, "acct:a", at(time.Second), wait)
	must(t, err)
	if !ok || !next.Equal(at(2*time.Second)) {
		t.Fatalf("attempt after the wait: ok %v, next wait until %v; want admitted, %v", ok, next, at(2*time.Second))
	}
	_, _, err = s.SignInAttempt(c, "acct:b", at(time.Hour), wait)
	must(t, err)
	removed, err := s.DeleteStaleSignInFailures(c, at(time.Minute))
	must(t, err)
	if removed != 1 {
		t.Fatalf("stale: removed %d, want 1 (acct:a)", removed)
	}
	must(t, s.ClearSignInFailures(c, "acct:b"))
	for range 3 {
		if ok, _, _ := s.SignInAttempt(c, "acct:b", at(time.Hour), wait); !ok {
			t.Fatal("a cleared key is not back to its free attempts")
		}
	}
}

// Parallel MFA attempts check no more codes than they count, and one
// TOTP step is claimed once.
func testMFAAttemptsAtomic(t *testing.T, s Store) {
	c := ctx(t)
	u := newUser(t, s, "mallory")
	const max, tries = 5, 9
	var mu sync.Mutex
	admitted, locked := 0, 0
	var wg sync.WaitGroup
	for range tries {
		wg.Go(func() {
			err := s.BeginMFAAttempt(c, u.ID, at(0), max, time.Hour)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				admitted++
			case errors.Is(err, store.ErrExhausted):
				locked++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.User(c, u.ID)
	must(t, err)
	if admitted != max || locked != tries-max || got.MFAFailures != max || !got.MFALockedTil.Equal(at(time.Hour)) {
		t.Fatalf("%d parallel attempts: %d admitted, %d locked, %d failures stored, locked until %v; want %d, %d, %d, %v",
			tries, admitted, locked, got.MFAFailures, got.MFALockedTil, max, tries-max, max, at(time.Hour))
	}
	// The lock lifts; a success claims its step once, however many try.
	must(t, s.BeginMFAAttempt(c, u.ID, at(time.Hour), max, time.Hour))
	wins := 0
	for range 6 {
		wg.Go(func() {
			err := s.ClaimTOTPStep(c, u.ID, 1000, nil)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				wins++
			} else if !errors.Is(err, store.ErrConflict) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, _ = s.User(c, u.ID)
	if wins != 1 || got.TOTPLastStep != 1000 || got.MFAFailures != 0 || !got.MFALockedTil.IsZero() {
		t.Fatalf("parallel claims of one step: %d won; user %+v", wins, got)
	}
	// A pending secret is stored only while there is none.
	must(t, s.ClaimTOTPStep(c, u.ID, 1001, []byte("sealed-1")))
	wantErr(t, s.ClaimTOTPStep(c, u.ID, 1002, []byte("sealed-2")), store.ErrConflict, "second enrollment")
	got, _ = s.User(c, u.ID)
	if string(got.TOTPSecret) != "sealed-1" {
		t.Fatalf("TOTP secret %q", got.TOTPSecret)
	}
	wantErr(t, s.BeginMFAAttempt(c, "u_missing", at(0), max, time.Hour), store.ErrNotFound, "missing user")
}
