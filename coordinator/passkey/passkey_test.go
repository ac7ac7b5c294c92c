package passkey

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

func TestNewNeedsAHostName(t *testing.T) {
	for _, u := range []string{"https://10.0.0.5", "http://[::1]:8080", "not a url", "/relative"} {
		if _, err := New(u, "moat", nil, nil); err == nil {
			t.Errorf("New(%q) accepted an address WebAuthn cannot use", u)
		}
	}
	rp, err := New("https://moat.example.com:8443/", "moat", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id, origins := rp.w.Config.RPID, rp.w.Config.RPOrigins; id != "moat.example.com" || len(origins) != 1 || origins[0] != "https://moat.example.com:8443" {
		t.Fatalf("RP ID %q, origins %q", id, origins)
	}
}

// A ceremony works once, for the person and purpose it was started for,
// and its options name the RP and demand user verification.
func TestCeremonyIsSingleUseAndBound(t *testing.T) {
	st, err := store.Open(context.Background(), "", filepath.Join(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	rp, err := New("http://localhost:8080", "moat", st, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pat := &Person{ID: "u_pat", Name: "pat@example.com"}
	if _, err := rp.BeginLogin(ctx, pat, "login:1"); !errors.Is(err, ErrNoPasskeys) {
		t.Fatalf("sign-in without a passkey: %v, want ErrNoPasskeys", err)
	}
	cer, err := rp.BeginRegistration(ctx, pat, "register:1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"id":"localhost"`, `"userVerification":"required"`} {
		if !strings.Contains(cer.Options, want) {
			t.Errorf("options lack %s: %s", want, cer.Options)
		}
	}
	other := &Person{ID: "u_eve", Name: "eve@example.com"}
	if _, _, err := rp.FinishRegistration(ctx, other, "register:1", cer.ID, "{}", ""); !errors.Is(err, ErrExpired) {
		t.Fatalf("another person's ceremony: %v, want ErrExpired", err)
	}
	// That spent it: the right person cannot use it either now.
	if _, _, err := rp.FinishRegistration(ctx, pat, "register:1", cer.ID, "{}", ""); !errors.Is(err, ErrExpired) {
		t.Fatalf("a spent ceremony: %v, want ErrExpired", err)
	}
	cer, _ = rp.BeginRegistration(ctx, pat, "register:2")
	if _, _, err := rp.FinishRegistration(ctx, pat, "register:1", cer.ID, "{}", ""); !errors.Is(err, ErrExpired) {
		t.Fatalf("a ceremony for another purpose: %v, want ErrExpired", err)
	}
	cer, _ = rp.BeginRegistration(ctx, pat, "register:3")
	now = now.Add(TTL)
	if _, _, err := rp.FinishRegistration(ctx, pat, "register:3", cer.ID, "{}", ""); !errors.Is(err, ErrExpired) {
		t.Fatalf("an expired ceremony: %v, want ErrExpired", err)
	}
	cer, _ = rp.BeginRegistration(ctx, pat, "register:4")
	if _, _, err := rp.FinishRegistration(ctx, pat, "register:4", cer.ID, `{"id":"x"}`, ""); !errors.Is(err, ErrRefused) {
		t.Fatalf("a malformed answer: %v, want ErrRefused", err)
	}
}

func TestMethodAndName(t *testing.T) {
	if Method(&store.Passkey{Data: []byte(`{"flags":{"backupEligible":true}}`)}) != MethodSoftware ||
		Method(&store.Passkey{Data: []byte(`{"flags":{}}`)}) != MethodHardware {
		t.Error("the backup-eligible flag does not decide swk/hwk")
	}
	if got := CleanName("  my\n key  " + strings.Repeat("x", 100)); strings.ContainsAny(got, "\n") || len([]rune(got)) != 64 {
		t.Errorf("CleanName = %q", got)
	}
}
