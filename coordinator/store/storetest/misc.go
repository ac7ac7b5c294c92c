package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

func testPolicy(t *testing.T, s Store) {
	c := ctx(t)
	_, err := s.Policy(c)
	wantErr(t, err, store.ErrNotFound, "policy before any is saved")
	var saved []*store.PolicyVersion
	for i, text := range []string{`{}`, `{"grants":[]}`, `{"tests":[]}`} {
		p := &store.PolicyVersion{Text: text, Author: "u_1", Message: "v", Created: at(time.Duration(i) * time.Second)}
		must(t, s.SavePolicy(c, p))
		if i > 0 && p.ID <= saved[i-1].ID {
			t.Fatalf("policy IDs do not increase: %d after %d", p.ID, saved[i-1].ID)
		}
		saved = append(saved, p)
	}
	p, err := s.Policy(c)
	must(t, err)
	same(t, p, saved[2], "policy in force")
	p, err = s.PolicyVersion(c, saved[0].ID)
	must(t, err)
	same(t, p, saved[0], "first version")
	_, err = s.PolicyVersion(c, 9999)
	wantErr(t, err, store.ErrNotFound, "missing version")
	h, err := s.PolicyHistory(c, 2)
	must(t, err)
	same(t, h, []*store.PolicyVersion{saved[2], saved[1]}, "history")
	h, err = s.PolicyHistory(c, 0)
	must(t, err)
	if len(h) != 3 {
		t.Fatalf("history without limit: %d versions", len(h))
	}
	now := &store.PolicyVersion{Text: "{}"}
	must(t, s.SavePolicy(c, now))
	if now.Created.IsZero() {
		t.Fatal("SavePolicy did not fill Created")
	}

	// Over a base: only while the base is the newest version.
	wantErr(t, s.SavePolicyOver(c, &store.PolicyVersion{Text: "{}"}, saved[2].ID), store.ErrConflict, "save over a stale base")
	over := &store.PolicyVersion{Text: `{"groups":{}}`}
	must(t, s.SavePolicyOver(c, over, now.ID))
	if p, err := s.Policy(c); err != nil || p.ID != over.ID {
		t.Fatalf("after saving over the newest: %v %v", p, err)
	}
}

// Of several editors saving over the same base at once, exactly one wins.
func testPolicyRace(t *testing.T, s Store) {
	c := ctx(t)
	base := &store.PolicyVersion{Text: "{}"}
	must(t, s.SavePolicy(c, base))
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- s.SavePolicyOver(c, &store.PolicyVersion{Text: fmt.Sprint(`{"tests":[]} // `, i)}, base.ID)
		}()
	}
	won := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			won++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("a losing save: %v, want ErrConflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d saves over one base won, want 1", won, n)
	}
}

func testIdPUsers(t *testing.T, s Store) {
	c := ctx(t)
	u := &store.IdPUser{Email: "Alice@Example.com", Name: "Alice", Admin: true, Groups: []string{"admins"},
		SetupHash: hash("setup"), SetupExpiry: at(time.Hour), Created: at(0)}
	must(t, s.CreateIdPUser(c, u))
	if u.ID == "" || u.Email != "alice@example.com" {
		t.Fatalf("CreateIdPUser: %+v", u)
	}
	for what, get := range map[string]func() (*store.IdPUser, error){
		"id":         func() (*store.IdPUser, error) { return s.IdPUser(c, u.ID) },
		"email":      func() (*store.IdPUser, error) { return s.IdPUserByEmail(c, "ALICE@example.com") },
		"setup hash": func() (*store.IdPUser, error) { return s.IdPUserBySetupHash(c, hash("setup")) },
	} {
		got, err := get()
		must(t, err)
		same(t, got, u, "idp user by "+what)
	}
	wantErr(t, s.CreateIdPUser(c, &store.IdPUser{Email: "alice@EXAMPLE.com"}), store.ErrConflict, "same email")

	u.PasswordHash, u.TOTPSecret, u.TOTPLastStep, u.SetupHash, u.SetupExpiry = "$argon2id$x", []byte{9}, 50, nil, time.Time{}
	u.Failures, u.LockedUntil = 3, at(time.Minute)
	must(t, s.UpdateIdPUser(c, u))
	got, err := s.IdPUser(c, u.ID)
	must(t, err)
	same(t, got, u, "updated idp user")
	stale := *u
	stale.TOTPLastStep = 1
	must(t, s.UpdateIdPUser(c, &stale))
	if got, _ := s.IdPUser(c, u.ID); got.TOTPLastStep != 50 {
		t.Fatalf("TOTPLastStep went back to %d", got.TOTPLastStep)
	}
	_, err = s.IdPUserBySetupHash(c, hash("setup"))
	wantErr(t, err, store.ErrNotFound, "cleared setup hash")
	_, err = s.IdPUserBySetupHash(c, nil)
	wantErr(t, err, store.ErrNotFound, "empty setup hash")
	_, err = s.IdPUser(c, "iu_missing")
	wantErr(t, err, store.ErrNotFound, "missing idp user")
	wantErr(t, s.UpdateIdPUser(c, &store.IdPUser{ID: "iu_missing", Email: "x@y"}), store.ErrNotFound, "update missing")

	must(t, s.CreateIdPUser(c, &store.IdPUser{Email: "bob@example.com"}))
	us, err := s.IdPUsers(c)
	must(t, err)
	if len(us) != 2 || us[0].ID != u.ID {
		t.Fatalf("IdPUsers: %s", show(us))
	}
}

func testAdminActions(t *testing.T, s Store) {
	c := ctx(t)
	var logged []*store.AdminAction
	for i, action := range []string{"device.revoke", "policy.save", "key.create"} {
		a := &store.AdminAction{Time: at(time.Duration(i) * time.Second), Actor: "u_1", Action: action,
			Target: "x", Detail: "{}"}
		must(t, s.LogAdminAction(c, a))
		logged = append(logged, a)
	}
	got, err := s.AdminActions(c, 2)
	must(t, err)
	same(t, got, []*store.AdminAction{logged[2], logged[1]}, "admin actions")
	a := &store.AdminAction{Actor: "token:t1", Action: "user.disable"}
	must(t, s.LogAdminAction(c, a))
	if a.ID <= logged[2].ID || a.Time.IsZero() {
		t.Fatalf("LogAdminAction did not fill ID and Time: %+v", a)
	}
}

func testSettings(t *testing.T, s Store) {
	c := ctx(t)
	_, err := s.Setting(c, "epoch")
	wantErr(t, err, store.ErrNotFound, "unset setting")
	must(t, s.SetSetting(c, "epoch", []byte("1")))
	must(t, s.SetSetting(c, "epoch", []byte("2")))
	v, err := s.Setting(c, "epoch")
	must(t, err)
	same(t, string(v), "2", "setting")
	must(t, s.Ping(c))
}

// testTimes checks times come back in UTC, to the microsecond.
func testTimes(t *testing.T, s Store) {
	c := ctx(t)
	zone := time.FixedZone("X", 5*3600+1800)
	in := time.Date(2026, 7, 1, 12, 0, 0, 987654321, zone)
	must(t, s.SetSetting(c, "x", nil))
	p := &store.PolicyVersion{Text: "{}", Created: in}
	must(t, s.SavePolicy(c, p))
	got, err := s.PolicyVersion(c, p.ID)
	must(t, err)
	want := in.UTC().Truncate(time.Microsecond)
	if got.Created != want || got.Created.Location() != time.UTC {
		t.Fatalf("time came back as %v, want %v", got.Created, want)
	}
}
