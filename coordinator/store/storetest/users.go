package storetest

import (
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

func newUser(t *testing.T, s Store, sub string) *store.User {
	t.Helper()
	u, err := s.UpsertUserByOIDC(ctx(t), &store.User{Issuer: "https://idp.example", Subject: sub,
		Email: sub + "@example.com", Name: sub, Groups: []string{"ml"}, LastLogin: at(0)})
	must(t, err)
	return u
}

func testUsers(t *testing.T, s Store) {
	c := ctx(t)
	_, err := s.User(c, "u_missing")
	wantErr(t, err, store.ErrNotFound, "missing user")

	u := newUser(t, s, "alice")
	if u.ID == "" || u.Created.IsZero() || u.Role != "member" {
		t.Fatalf("upsert did not fill ID, Created, Role: %+v", u)
	}
	got, err := s.User(c, u.ID)
	must(t, err)
	same(t, got, u, "user as stored")

	// An admin disables alice; her next sign-in refreshes the IdP's
	// fields but leaves her disabled and keeps her ID.
	got.Disabled = true
	must(t, s.UpdateUser(c, got))
	again, err := s.UpsertUserByOIDC(c, &store.User{Issuer: u.Issuer, Subject: u.Subject,
		Email: "alice@new.example", Name: "Alice", Groups: []string{"ml", "admins"}, Admin: true,
		LastLogin: at(time.Hour)})
	must(t, err)
	want := *u
	want.Email, want.Name, want.Groups, want.Admin = "alice@new.example", "Alice", []string{"ml", "admins"}, true
	want.LastLogin, want.Disabled = at(time.Hour), true
	same(t, again, &want, "user after second sign-in")

	// Same subject at another issuer is another person.
	other, err := s.UpsertUserByOIDC(c, &store.User{Issuer: "https://other.example", Subject: "alice", Role: "auditor"})
	must(t, err)
	if other.ID == u.ID || other.Role != "auditor" {
		t.Fatalf("other issuer: %+v", other)
	}
	us, err := s.Users(c)
	must(t, err)
	if len(us) != 2 {
		t.Fatalf("Users: %d, want 2", len(us))
	}
	wantErr(t, s.UpdateUser(c, &store.User{ID: "u_missing"}), store.ErrNotFound, "update missing user")
}

func testUserMFAFields(t *testing.T, s Store) {
	c := ctx(t)
	u := newUser(t, s, "bob")
	u.TOTPSecret, u.TOTPLastStep, u.MFAFailures, u.MFALockedTil = []byte{1, 2, 3}, 100, 2, at(time.Minute)
	u.Role = "admin"
	must(t, s.UpdateUser(c, u))
	got, err := s.User(c, u.ID)
	must(t, err)
	same(t, got, u, "user with MFA fields")

	// A stale copy cannot move the last TOTP step back (replay).
	stale := *u
	stale.TOTPLastStep = 90
	must(t, s.UpdateUser(c, &stale))
	got, err = s.User(c, u.ID)
	must(t, err)
	if got.TOTPLastStep != 100 {
		t.Fatalf("TOTPLastStep went back to %d", got.TOTPLastStep)
	}
	// A sign-in keeps the MFA state and a role given without one.
	again, err := s.UpsertUserByOIDC(c, &store.User{Issuer: u.Issuer, Subject: u.Subject, Email: u.Email})
	must(t, err)
	if again.Role != "admin" || string(again.TOTPSecret) != "\x01\x02\x03" || again.MFAFailures != 2 {
		t.Fatalf("sign-in reset MFA state or role: %+v", again)
	}

	// The last MFA: recorded, never moved back, kept by other updates.
	must(t, s.RecordMFA(c, u.ID, at(time.Hour), store.MFAViaTOTP))
	must(t, s.RecordMFA(c, u.ID, at(time.Minute), store.MFAViaIdP)) // older: ignored
	must(t, s.UpdateUser(c, u))
	got, err = s.User(c, u.ID)
	must(t, err)
	if !got.LastMFA.Equal(at(time.Hour)) || got.MFAVia != store.MFAViaTOTP {
		t.Fatalf("last MFA %v via %q, want %v via totp", got.LastMFA, got.MFAVia, at(time.Hour))
	}
	wantErr(t, s.RecordMFA(c, "u_nobody", at(time.Hour), store.MFAViaIdP), store.ErrNotFound, "MFA of an unknown user")
}
