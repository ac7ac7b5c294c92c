package coordinator

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
)

// TestRestoreReplaysErasures: a person erased after a backup was taken
// is erased again when the backup is restored, from the erasure log kept
// with the backups; a person not erased keeps their key; the restored
// trail says what was replayed; a second restore of the same backup
// replays the same erasure, and an erasure that cannot be logged is
// refused before the key is touched.
func TestRestoreReplaysErasures(t *testing.T) {
	ctx := context.Background()
	dir, backups := t.TempDir(), t.TempDir()
	log := filepath.Join(backups, "erasures.jsonl")
	tc := startCoord(t, dir, newClock(), func(c *Config) { c.ErasureLog = log })
	alice := tc.addPerson(t, "alice@example.com", false)
	tc.signIn(t, alice, "laptop")
	bob := tc.addPerson(t, "bob@example.com", false)
	tc.signIn(t, bob, "laptop")
	out := filepath.Join(backups, "moat.backup")
	if _, err := Backup(ctx, Config{DataDir: dir}, out, true); err != nil {
		t.Fatal(err)
	}
	tc.stop()
	cfg := Config{DataDir: dir, ErasureLog: log}
	if err := ErasePerson(ctx, cfg, "alice@example.com", "GDPR Art. 17 request #7"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(log); strings.Count(string(b), "\n") != 1 || strings.Contains(string(b), "alice@") {
		t.Fatalf("erasure log %q: want one line with the user id, no email", b)
	}

	for range 2 {
		fresh := t.TempDir()
		info, err := Restore(ctx, Config{DataDir: fresh, ErasureLog: log}, out)
		if err != nil || info.ErasuresReplayed != 1 {
			t.Fatalf("restore: %+v, %v; want 1 erasure replayed", info, err)
		}
		tc2, err := restartWith(t, tc, fresh, func(c *Config) { c.ErasureLog = log })
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{} // user id → key erased
		ks, err := tc2.store.PersonKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			keys[k.UserID] = !k.Erased.IsZero() && k.Private == nil
		}
		a, _ := findPerson(ctx, tc2.store, "alice@example.com")
		b, _ := findPerson(ctx, tc2.store, "bob@example.com")
		if !keys[a.ID] || keys[b.ID] {
			t.Fatalf("after restore: alice erased %v (want true), bob erased %v (want false)", keys[a.ID], keys[b.ID])
		}
		trail, _ := tc2.store.AdminActions(ctx, 10)
		var replayed, restored bool
		for _, act := range trail {
			replayed = replayed || act.Action == ActionUserErase && act.Target == a.ID && strings.Contains(act.Detail, "replayed on restore")
			restored = restored || act.Action == actionRestore && strings.Contains(act.Detail, "1 erasures made after it replayed")
		}
		if !replayed || !restored {
			t.Fatalf("restored trail lacks the replay: %s", jsonOf(trail))
		}
		tc2.stop()
	}

	// An erasure the log cannot take is not made.
	bad := Config{DataDir: dir, ErasureLog: filepath.Join(log, "not-a-dir", "x")}
	if err := ErasePerson(ctx, bad, "bob@example.com", "request #8"); err == nil || !strings.Contains(err.Error(), "erasure log") {
		t.Fatalf("erasure with an unwritable log: %v", err)
	}
	err := withSecrets(ctx, Config{DataDir: dir}, func(st *store.DB, _ *seal.Box) error {
		b, err := findPerson(ctx, st, "bob@example.com")
		if err != nil {
			return err
		}
		k, err := st.PersonKey(ctx, b.ID)
		if err == nil && !k.Erased.IsZero() {
			t.Error("bob's key was destroyed although the erasure could not be logged")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
