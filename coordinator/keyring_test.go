package coordinator

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/mesh/wire"
)

func newSealKey() [seal.KeySize]byte {
	var k [seal.KeySize]byte
	rand.Read(k[:])
	return k
}

// restartWith starts a coordinator on tc's address (so on the same
// public URL) over dir, with cfg changed by mod; it returns New's error.
func restartWith(t *testing.T, tc *testCoord, dir string, mod func(*Config)) (*testCoord, error) {
	t.Helper()
	cfg := Config{PublicURL: tc.URL, DataDir: dir, Now: tc.clock.Now, Logger: testLogger(t)}
	mod(&cfg)
	s, err := New(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	s.Close()
	return startCoordAt(t, strings.TrimPrefix(tc.URL, "http://"), dir, tc.clock, mod), nil
}

// TestSealKeyRefusals: a replica whose seal key is missing or is not the
// one the database's secrets are sealed under refuses to start, saying
// which and how to fix it; given the right key in any place, it runs.
func TestSealKeyRefusals(t *testing.T) {
	dir := t.TempDir()
	tc := startCoord(t, dir, newClock())
	tc.stop()
	keyPath := filepath.Join(dir, SealKeyFile)
	key, err := seal.LoadKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	id := seal.KeyID(key)
	if err := os.Rename(keyPath, filepath.Join(t.TempDir(), "moved")); err != nil {
		t.Fatal(err)
	}

	_, err = restartWith(t, tc, dir, func(*Config) {})
	for _, want := range []string{"seal key missing", id, keyPath + " does not exist", "--seal-key-file", "MOAT_SEAL_KEY"} {
		if !errors.Is(err, ErrSealKey) || !strings.Contains(err.Error(), want) {
			t.Fatalf("no seal key: err = %v; want ErrSealKey saying %q", err, want)
		}
	}
	if _, err := os.Stat(keyPath); !os.IsNotExist(err) {
		t.Fatal("a replica with no seal key made a new one")
	}

	other := newSealKey()
	_, err = restartWith(t, tc, dir, func(c *Config) { c.SealKey, c.SealKeySource = other, "--seal-key-file /etc/moat/other.key" })
	for _, want := range []string{"wrong seal key", "--seal-key-file /etc/moat/other.key is seal key " + seal.KeyID(other), "sealed under seal key " + id} {
		if !errors.Is(err, ErrSealKey) || !strings.Contains(err.Error(), want) {
			t.Fatalf("wrong seal key: err = %v; want ErrSealKey saying %q", err, want)
		}
	}

	if _, err := restartWith(t, tc, dir, func(c *Config) { c.SealKey = key }); err != nil {
		t.Fatalf("the right key, given: %v", err)
	}
}

// TestRotateSealKey: rotating the seal key re-seals every secret, so
// that the coordinator, restarted with the new key only, signs people in
// (their TOTP secrets and the provider's keys open) and keeps its
// devices; the old key is refused.
func TestRotateSealKey(t *testing.T) {
	dir := t.TempDir()
	tc := startCoord(t, dir, newClock())
	alice := tc.addPerson(t, "alice@example.com", false)
	laptop := tc.signIn(t, alice, "laptop")
	tc.stop()

	newKey := newSealKey()
	n, err := RotateSealKey(context.Background(), Config{DataDir: dir}, newKey)
	if err != nil {
		t.Fatal(err)
	}
	// the client secret (and its old copy), the signing key, alice's TOTP
	if n < 4 {
		t.Fatalf("re-sealed %d values, want at least 4", n)
	}
	if _, err := restartWith(t, tc, dir, func(*Config) {}); !errors.Is(err, ErrSealKey) {
		t.Fatalf("old key after rotation: err = %v, want ErrSealKey", err)
	}
	tc2, err := restartWith(t, tc, dir, func(c *Config) { c.SealKey = newKey })
	if err != nil {
		t.Fatal(err)
	}
	tc2.signIn(t, alice, "phone")
	laptop.watch(t).next(t, "the laptop's netmap", func(*wire.NetMap) bool { return true })
}

// TestRotateSealKeyAllOrNothing: a value the current key cannot open
// stops the rotation, and nothing is re-sealed.
func TestRotateSealKeyAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	tc := startCoord(t, dir, newClock())
	tc.addPerson(t, "alice@example.com", false)
	if err := tc.store.SetSetting(context.Background(), embeddedClientSecret, []byte("not sealed")); err != nil {
		t.Fatal(err)
	}
	tc.stop()
	if _, err := RotateSealKey(context.Background(), Config{DataDir: dir}, newSealKey()); err == nil || !strings.Contains(err.Error(), embeddedClientSecret) {
		t.Fatalf("rotation over a value it cannot open: err = %v", err)
	}
	if _, err := restartWith(t, tc, dir, func(*Config) {}); err != nil {
		t.Fatalf("the old key after a failed rotation: %v", err)
	}
}

// TestSealKeyOfEarlierInstall: a database from before the key's id was
// recorded takes the key that opens its secrets, and refuses another.
func TestSealKeyOfEarlierInstall(t *testing.T) {
	dir := t.TempDir()
	tc := startCoord(t, dir, newClock())
	if err := tc.store.SetSetting(context.Background(), settingSealKeyID, nil); err != nil { // as before ids
		t.Fatal(err)
	}
	tc.stop()
	other := newSealKey()
	_, err := restartWith(t, tc, dir, func(c *Config) { c.SealKey = other })
	if !errors.Is(err, ErrSealKey) || !strings.Contains(err.Error(), "does not open this database's secret") {
		t.Fatalf("another key on an earlier install: err = %v", err)
	}
	if _, err := restartWith(t, tc, dir, func(*Config) {}); err != nil {
		t.Fatalf("its own key: %v", err)
	}
}
