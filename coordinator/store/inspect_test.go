package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/pgtest"
)

// Inspect reads the schema version and clock and changes nothing: no
// database file made where there is none, no migrations on a fresh one.
func TestInspect(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := store.Inspect(ctx, "", dir); err == nil || !strings.Contains(err.Error(), "no database at") {
		t.Fatalf("Inspect of an empty data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "moat.db")); err == nil {
		t.Fatal("Inspect created a database")
	}
	check := func(t *testing.T, dsn string, wantNow bool) {
		t.Helper()
		fresh, err := store.Inspect(ctx, dsn, dir)
		if err != nil || fresh.Schema != 0 || fresh.Want == 0 || fresh.Now.IsZero() == wantNow {
			t.Fatalf("Inspect of a fresh database: %+v, %v", fresh, err)
		}
		db, err := store.Open(ctx, dsn, dir)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		in, err := store.Inspect(ctx, dsn, dir)
		if err != nil || in.Schema != in.Want || in.Kind != db.Kind() {
			t.Fatalf("Inspect after Open: %+v, %v", in, err)
		}
		if wantNow && time.Since(in.Now).Abs() > time.Minute {
			t.Errorf("the database's clock: %v", in.Now)
		}
	}
	os.WriteFile(filepath.Join(dir, "moat.db"), nil, 0o600) // an empty SQLite file: a database no coordinator started on
	check(t, "", false)
	t.Run("postgres", func(t *testing.T) { check(t, pgtest.FreshSchema(t, pgtest.URL(t, "PostgreSQL store tests")), true) })
}
