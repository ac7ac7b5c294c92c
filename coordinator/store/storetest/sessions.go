package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

func newSession(t *testing.T, s Store, poll string, expires time.Time) *store.LoginSession {
	t.Helper()
	l := &store.LoginSession{PollHash: hash(poll), Purpose: "device", PublicKey: "pk", Hostname: "h",
		OS: "linux", Nonce: "n", Verifier: "v", Created: at(0), Expires: expires, Requester: "192.0.2.7"}
	must(t, s.CreateLoginSession(ctx(t), l))
	return l
}

func testLoginSessions(t *testing.T, s Store) {
	c := ctx(t)
	l := newSession(t, s, "p1", at(10*time.Minute))
	if l.ID == "" {
		t.Fatal("CreateLoginSession did not fill ID")
	}
	ui := &store.LoginSession{Purpose: "ui", Created: at(0), Expires: at(time.Minute)}
	must(t, s.CreateLoginSession(c, ui)) // no poll hash
	got, err := s.LoginSession(c, l.ID)
	must(t, err)
	same(t, got, l, "session")
	got, err = s.LoginSessionByPollHash(c, hash("p1"))
	must(t, err)
	same(t, got, l, "session by poll hash")

	l.UserID, l.MFADone, l.DeviceID, l.Nonce, l.Refusal = "u_1", true, "d_1", "n2", "not allowed"
	must(t, s.UpdateLoginSession(c, l))
	got, err = s.LoginSession(c, l.ID)
	must(t, err)
	same(t, got, l, "updated session")

	for what, get := range map[string]func() (*store.LoginSession, error){
		"id":         func() (*store.LoginSession, error) { return s.LoginSession(c, "ls_missing") },
		"poll hash":  func() (*store.LoginSession, error) { return s.LoginSessionByPollHash(c, hash("nope")) },
		"empty hash": func() (*store.LoginSession, error) { return s.LoginSessionByPollHash(c, nil) },
	} {
		_, err := get()
		wantErr(t, err, store.ErrNotFound, "session by "+what)
	}
	wantErr(t, s.UpdateLoginSession(c, &store.LoginSession{ID: "ls_missing"}), store.ErrNotFound, "update missing")

	newSession(t, s, "p2", at(time.Hour))
	n, err := s.DeleteExpiredLoginSessions(c, at(30*time.Minute))
	must(t, err)
	if n != 2 {
		t.Fatalf("deleted %d expired sessions, want 2", n)
	}
	_, err = s.LoginSession(c, l.ID)
	wantErr(t, err, store.ErrNotFound, "expired session")
	_, err = s.LoginSessionByPollHash(c, hash("p2"))
	must(t, err)
}

func testLoginResultOnce(t *testing.T, s Store) {
	c := ctx(t)
	l := newSession(t, s, "p1", at(time.Hour))
	_, err := s.ConsumeLoginResult(c, l.ID)
	wantErr(t, err, store.ErrNotFound, "result before there is one")
	_, err = s.ConsumeLoginResult(c, "ls_missing")
	wantErr(t, err, store.ErrNotFound, "result of a missing session")

	l.Result = []byte(`{"credential":"x"}`)
	must(t, s.UpdateLoginSession(c, l))
	stale := *l
	got, err := s.ConsumeLoginResult(c, l.ID)
	must(t, err)
	same(t, string(got), `{"credential":"x"}`, "result")
	_, err = s.ConsumeLoginResult(c, l.ID)
	wantErr(t, err, store.ErrConflict, "second consume")

	// A stale copy written back neither clears Consumed nor swaps the result.
	stale.Result = []byte(`{"credential":"y"}`)
	must(t, s.UpdateLoginSession(c, &stale))
	_, err = s.ConsumeLoginResult(c, l.ID)
	wantErr(t, err, store.ErrConflict, "consume after stale update")
	now, err := s.LoginSession(c, l.ID)
	must(t, err)
	if !now.Consumed || string(now.Result) != `{"credential":"x"}` {
		t.Fatalf("stale update changed a consumed session: %+v", now)
	}

	// Twenty pollers race: one gets the result.
	r := newSession(t, s, "p2", at(time.Hour))
	r.Result = []byte("once")
	must(t, s.UpdateLoginSession(c, r))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 20 {
		wg.Go(func() {
			res, err := s.ConsumeLoginResult(c, r.ID)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && string(res) == "once":
				wins++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("loser got %q, %v; want ErrConflict", res, err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d pollers got the result, want 1", wins)
	}
}

// testLoginBrowserBinding: the first browser to claim a sign-in keeps it;
// of many racing, exactly one wins.
func testLoginBrowserBinding(t *testing.T, s Store) {
	l := newSession(t, s, "poll-bind", at(time.Hour))
	wantErr(t, s.BindLoginSession(ctx(t), "ls_unknown", hash("a")), store.ErrNotFound, "binding an unknown session")
	var wg sync.WaitGroup
	wins := make(chan string, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := fmt.Sprint("browser-", i)
			if err := s.BindLoginSession(ctx(t), l.ID, hash(b)); err == nil {
				wins <- b
			} else if !errors.Is(err, store.ErrConflict) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	close(wins)
	var winner []string
	for w := range wins {
		winner = append(winner, w)
	}
	if len(winner) != 1 {
		t.Fatalf("%d browsers bound one sign-in, want exactly 1", len(winner))
	}
	must(t, s.BindLoginSession(ctx(t), l.ID, hash(winner[0]))) // the same browser again is fine
	got, err := s.LoginSession(ctx(t), l.ID)
	must(t, err)
	same(t, got.BrowserHash, hash(winner[0]), "stored browser hash")
	// An update of the session keeps the binding.
	got.UserID = ""
	must(t, s.UpdateLoginSession(ctx(t), got))
	again, _ := s.LoginSession(ctx(t), l.ID)
	same(t, again.BrowserHash, hash(winner[0]), "browser hash after an update")
}
