package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
)

// contents is what a restore must give back.
type contents struct {
	Users    []*store.User
	IdPUsers []*store.IdPUser
	Devices  []*store.Device
	Policies []*store.PolicyVersion
	Audit    []*store.AuditRecord
	Admin    []*store.AdminAction
}

func contentsOf(t *testing.T, st *store.DB) contents {
	t.Helper()
	ctx := context.Background()
	var c contents
	var errs [6]error
	c.Users, errs[0] = st.Users(ctx)
	c.IdPUsers, errs[1] = st.IdPUsers(ctx)
	c.Devices, errs[2] = st.Devices(ctx)
	c.Policies, errs[3] = st.PolicyHistory(ctx, 100)
	c.Audit, errs[4] = st.Audit(ctx, store.AuditFilter{})
	c.Admin, errs[5] = st.AdminActions(ctx, 100)
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	if len(c.Users) == 0 || len(c.Devices) < 2 || len(c.Policies) < 2 || len(c.Audit) == 0 {
		t.Fatalf("too little to compare: %s", jsonOf(c))
	}
	return c
}

// TestBackupRestore: a backup taken while the coordinator runs, restored
// onto a fresh data dir, gives back the same people, devices, nodes,
// policy history and audit, and a coordinator started on it accepts the
// credentials of the devices signed in before.
func TestBackupRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tc := startCoord(t, dir, newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	tc.savePolicy(t, tok, testPolicy)
	alice := tc.addPerson(t, "alice@example.com", false)
	laptop := tc.signIn(t, alice, "laptop")
	node, _ := tc.enrollNode(t, tok, "llama")
	insertAudit(t, tc)
	before := contentsOf(t, tc.store)

	out := filepath.Join(t.TempDir(), "moat.backup")
	info, err := Backup(ctx, Config{DataDir: dir}, out, false) // while it runs
	if err != nil {
		t.Fatal(err)
	}
	if info.WithSealKey || info.SealKeyID == "" || info.SchemaVersion == 0 {
		t.Fatalf("backup info %+v", info)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v; want mode 0600", fi, err)
	}
	tc.stop()

	// Restored without its seal key, the backup says what is missing.
	fresh := t.TempDir()
	if _, err := Restore(ctx, Config{DataDir: fresh}, out); err == nil || !strings.Contains(err.Error(), "seal key missing") {
		t.Fatalf("restore without the seal key: err = %v", err)
	}

	// With the seal key kept apart, it comes back whole.
	key := readKey(t, dir)
	if _, err := Restore(ctx, Config{DataDir: fresh, SealKey: key}, out); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, Config{DataDir: fresh, SealKey: key}, out); err == nil || !strings.Contains(err.Error(), "already holds a database") {
		t.Fatalf("restore over a database: err = %v", err)
	}
	tc2, err := restartWith(t, tc, fresh, func(c *Config) { c.SealKey = key })
	if err != nil {
		t.Fatal(err)
	}
	after := contentsOf(t, tc2.store)
	if len(after.Admin) == 0 || after.Admin[0].Action != actionRestore || !strings.HasPrefix(after.Admin[0].Actor, "cli") {
		t.Fatalf("the restored trail does not start with the restore: %s", jsonOf(after.Admin))
	}
	after.Admin = after.Admin[1:] // newest first
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("restored contents differ:\nbefore %s\nafter  %s", jsonOf(before), jsonOf(after))
	}
	laptop.watch(t).next(t, "the laptop's netmap from the restored coordinator", anyNetmap)
	node.watch(t).next(t, "the node's netmap", func(nm *wire.NetMap) bool { return nm.Rules != nil })
	tc2.signIn(t, alice, "phone") // TOTP secrets and the provider's keys open
}

// TestBackupWithSealKey: a backup that holds its seal key restores with
// no key given.
func TestBackupWithSealKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tc := startCoord(t, dir, newClock())
	alice := tc.addPerson(t, "alice@example.com", false)
	out := filepath.Join(t.TempDir(), "moat.backup")
	if _, err := Backup(ctx, Config{DataDir: dir}, out, true); err != nil {
		t.Fatal(err)
	}
	tc.stop()
	fresh := t.TempDir()
	if _, err := Restore(ctx, Config{DataDir: fresh}, out); err != nil {
		t.Fatal(err)
	}
	if got := readKey(t, fresh); got != readKey(t, dir) {
		t.Fatal("restored seal.key differs")
	}
	tc2, err := restartWith(t, tc, fresh, func(*Config) {})
	if err != nil {
		t.Fatal(err)
	}
	tc2.signIn(t, alice, "laptop")
}

func anyNetmap(nm *wire.NetMap) bool { return nm.Self.Identity.Login != "" || nm.Rules != nil }

// insertAudit stores one audit record, as a node would ship it.
func insertAudit(t *testing.T, tc *testCoord) {
	t.Helper()
	rec, _ := json.Marshal(map[string]string{"id": "a1"})
	_, err := tc.store.InsertAudit(context.Background(), []*store.AuditRecord{{ID: "a1", NodeID: "n", Time: tc.clock.Now(),
		Login: "alice@example.com", Model: "llama", Decision: "allow", Body: rec}})
	if err != nil {
		t.Fatal(err)
	}
}

func readKey(t *testing.T, dir string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, SealKeyFile))
	if err != nil || len(b) != 32 {
		t.Fatalf("seal key: %d bytes, %v", len(b), err)
	}
	return [32]byte(b)
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
