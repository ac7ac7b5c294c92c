package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

func testUISessions(t *testing.T, s Store) {
	c := ctx(t)
	u := newUser(t, s, "ui-sessions")
	live := &store.UISession{Hash: hash("live"), UserID: u.ID, Created: at(0), Expires: at(time.Hour)}
	old := &store.UISession{Hash: hash("old"), UserID: u.ID, Created: at(0), Expires: at(time.Minute)}
	must(t, s.CreateUISession(c, live))
	must(t, s.CreateUISession(c, old))
	wantErr(t, s.CreateUISession(c, &store.UISession{Hash: hash("live"), UserID: u.ID, Expires: at(time.Hour)}), store.ErrConflict, "same hash twice")
	if err := s.CreateUISession(c, &store.UISession{UserID: u.ID}); err == nil {
		t.Error("a session without a hash was stored")
	}

	got, err := s.UISession(c, hash("live"))
	must(t, err)
	same(t, got, live, "UI session read back")
	_, err = s.UISession(c, nil)
	wantErr(t, err, store.ErrNotFound, "empty hash")
	_, err = s.UISession(c, hash("nobody"))
	wantErr(t, err, store.ErrNotFound, "unknown hash")

	n, err := s.DeleteExpiredUISessions(c, at(30*time.Minute))
	must(t, err)
	if n != 1 {
		t.Errorf("deleted %d expired UI sessions, want 1", n)
	}
	_, err = s.UISession(c, hash("old"))
	wantErr(t, err, store.ErrNotFound, "expired session after the sweep")

	must(t, s.DeleteUISession(c, hash("live")))
	must(t, s.DeleteUISession(c, hash("live"))) // absent: no error
	_, err = s.UISession(c, hash("live"))
	wantErr(t, err, store.ErrNotFound, "signed-out session")

	// Signing one person out everywhere leaves the others signed in.
	other := newUser(t, s, "ui-sessions-other")
	for i, owner := range []string{u.ID, u.ID, other.ID} {
		must(t, s.CreateUISession(c, &store.UISession{Hash: hash(fmt.Sprint("s", i)), UserID: owner, Expires: at(time.Hour)}))
	}
	must(t, s.DeleteUserUISessions(c, u.ID))
	for i, gone := range []bool{true, true, false} {
		_, err := s.UISession(c, hash(fmt.Sprint("s", i)))
		if gone {
			wantErr(t, err, store.ErrNotFound, "session of a person signed out everywhere")
		} else {
			must(t, err)
		}
	}
}
