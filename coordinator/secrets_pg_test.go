package coordinator

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// pgDatabase creates an empty database on the server MOAT_TEST_POSTGRES
// names, dropped when t ends, and returns its URL. Without a server the
// test skips (as root in CI, `make test` starts one and its absence
// fails).
func pgDatabase(t *testing.T) string {
	t.Helper()
	base := os.Getenv("MOAT_TEST_POSTGRES")
	if base == "" {
		const how = "MOAT_TEST_POSTGRES is not set; `make test` sets it as root through scripts/with-postgres.sh"
		if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
			t.Fatal("PostgreSQL tests cannot run in CI: " + how)
		}
		t.Skip("PostgreSQL tests skipped: " + how)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	name := "moat_coord_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("drop database: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// TestReplicasShareSecretsPostgres: replicas with data dirs of their own
// on one PostgreSQL share every secret through it given the same seal
// key: a person set up on one signs in on another, and both serve the
// same self-signed certificate. A replica without the key is refused.
func TestReplicasShareSecretsPostgres(t *testing.T) {
	dsn, key, clk := pgDatabase(t), newSealKey(), newClock()
	replica := func(c *Config) { c.Database, c.SealKey = dsn, key }
	a := startCoord(t, t.TempDir(), clk, replica)
	alice := a.addPerson(t, "alice@example.com", false)
	b := startCoord(t, t.TempDir(), clk, replica)
	b.signIn(t, alice, "laptop")

	keys, err := b.store.Secrets(context.Background(), "idp-signing-key:")
	if err != nil || len(keys) != 1 {
		t.Fatalf("signing keys: %d, %v; want the one both replicas share", len(keys), err)
	}
	_, fpA, err := SelfSignedTLS(context.Background(), Config{PublicURL: a.URL, DataDir: a.dir, Database: dsn, SealKey: key})
	if err != nil {
		t.Fatal(err)
	}
	_, fpB, err := SelfSignedTLS(context.Background(), Config{PublicURL: b.URL, DataDir: b.dir, Database: dsn, SealKey: key})
	if err != nil || fpA != fpB {
		t.Fatalf("replicas' certificates: %s, %s (%v); want one", fpA, fpB, err)
	}

	_, err = New(context.Background(), Config{PublicURL: a.URL, DataDir: t.TempDir(), Database: dsn, Logger: testLogger(t)})
	if !errors.Is(err, ErrSealKey) || !strings.Contains(err.Error(), "seal key missing") {
		t.Fatalf("a replica without the seal key: err = %v", err)
	}
}

// TestPgDumpRestore: the PostgreSQL backup documented in
// docs/operations.md (pg_dump -Fc, pg_restore into a new database) gives
// back everything, and the devices' credentials work on a coordinator
// started on the restored database with the same seal key.
func TestPgDumpRestore(t *testing.T) {
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed, so the PostgreSQL backup is not tested: %v", tool, err)
		}
	}
	src, dst, key := pgDatabase(t), pgDatabase(t), newSealKey()
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.Database, c.SealKey = src, key })
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	tc.savePolicy(t, tok, testPolicy)
	alice := tc.addPerson(t, "alice@example.com", false)
	laptop := tc.signIn(t, alice, "laptop")
	tc.enrollNode(t, tok, "llama")
	insertAudit(t, tc)
	before := contentsOf(t, tc.store)

	dump := filepath.Join(t.TempDir(), "moat.dump")
	pgTool(t, "pg_dump", "--format=custom", "--file="+dump, "--dbname="+src) // while it runs
	tc.stop()
	pgTool(t, "pg_restore", "--no-owner", "--exit-on-error", "--dbname="+dst, dump)

	tc2, err := restartWith(t, tc, t.TempDir(), func(c *Config) { c.Database, c.SealKey = dst, key })
	if err != nil {
		t.Fatal(err)
	}
	if after := contentsOf(t, tc2.store); !reflect.DeepEqual(before, after) {
		t.Fatalf("restored contents differ:\nbefore %s\nafter  %s", jsonOf(before), jsonOf(after))
	}
	laptop.watch(t).next(t, "the laptop's netmap from the restored database", anyNetmap)
	tc2.signIn(t, alice, "phone")
}

func pgTool(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}
