// Package storetest is the conformance suite every Store must pass:
// each method, its refusals (ErrNotFound, ErrConflict, ErrExhausted) and
// the races the coordinator relies on (one winner for a single-use
// enrollment key, a login result handed out once, unique addresses under
// concurrent device creation).
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// Run runs the suite. open returns a new, empty store for each subtest
// and arranges (with t.Cleanup) for it to be closed and removed.
func Run(t *testing.T, open func(t *testing.T) Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"Users", testUsers},
		{"UserMFAFields", testUserMFAFields},
		{"Devices", testDevices},
		{"DeviceRefusals", testDeviceRefusals},
		{"DeviceUpdate", testDeviceUpdate},
		{"DeviceAddresses", testDeviceAddresses},
		{"DeviceAddressesConcurrent", testDeviceAddressesConcurrent},
		{"EnrollKeys", testEnrollKeys},
		{"EnrollKeyRace", testEnrollKeyRace},
		{"APITokens", testAPITokens},
		{"LoginSessions", testLoginSessions},
		{"LoginResultOnce", testLoginResultOnce},
		{"LoginBrowserBinding", testLoginBrowserBinding},
		{"UISessions", testUISessions},
		{"PolicyRace", testPolicyRace},
		{"Policy", testPolicy},
		{"IdPUsers", testIdPUsers},
		{"Audit", testAudit},
		{"AuditFilter", testAuditFilter},
		{"AuditCursor", testAuditCursor},
		{"AuditCursorConcurrent", testAuditCursorConcurrent},
		{"SinkCursors", testSinkCursors},
		{"AuditRetention", testAuditRetention},
		{"AuditScrub", testAuditScrub},
		{"PersonKeys", testPersonKeys},
		{"AdminActions", testAdminActions},
		{"Settings", testSettings},
		{"Times", testTimes},
		{"SignInBackoff", testSignInBackoff},
		{"MFAAttemptsAtomic", testMFAAttemptsAtomic},
		{"IdPState", testIdPState},
		{"IdPStateRace", testIdPStateRace},
		{"IdPSetupOnce", testIdPSetupOnce},
		{"Presence", testPresence},
		{"Relays", testRelays},
		{"Paths", testPaths},
		{"Passkeys", testPasskeys},
		{"PasskeyUseRace", testPasskeyUseRace},
		{"PasskeyChallenges", testPasskeyChallenges},
		{"ResetMFA", testResetMFA},
		{"IdPGrants", testIdPGrants},
		{"IdPRefreshTokens", testIdPRefreshTokens},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// RunRestart checks that closing a store and opening it again loses
// nothing. open must open the same database every time it is called.
func RunRestart(t *testing.T, open func(t *testing.T) Store) {
	s := open(t)
	want := populate(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s = open(t)
	defer s.Close()
	verify(t, s, want)
}

// base is a time with microseconds, which every store keeps exactly.
var base = time.Date(2026, 3, 4, 5, 6, 7, 123456000, time.UTC)

// at returns base plus d.
func at(d time.Duration) time.Time { return base.Add(d) }

func ctx(t *testing.T) context.Context { return t.Context() }

// must fails the test when err is not nil.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr fails the test unless err wraps target.
func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// same fails the test unless got and want are deeply equal.
func same(t *testing.T, got, want any, what string) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %s\nwant %s", what, show(got), show(want))
	}
}

// show prints pointers' targets, which %+v does not.
func show(v any) string {
	rv := reflect.ValueOf(v)
	switch {
	case rv.Kind() == reflect.Pointer && !rv.IsNil():
		return fmt.Sprintf("%+v", rv.Elem().Interface())
	case rv.Kind() == reflect.Slice:
		s := "["
		for i := range rv.Len() {
			s += show(rv.Index(i).Interface()) + " "
		}
		return s + "]"
	}
	return fmt.Sprintf("%+v", v)
}

// hash returns a distinct 32-byte value standing for a SHA-256 hash.
func hash(s string) []byte {
	b := make([]byte, 32)
	copy(b, s)
	return b
}
