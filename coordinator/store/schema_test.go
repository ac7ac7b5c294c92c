package store_test

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/pgtest"
)

// schemaDB opens a database afresh, as a starting replica would, and
// also gives plain SQL access to it.
type schemaDB struct {
	open func() (*store.DB, error)
	raw  *sql.DB
}

func sqliteSchemaDB(t *testing.T) schemaDB {
	path := filepath.Join(t.TempDir(), "moat.db")
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return schemaDB{func() (*store.DB, error) { return store.OpenSQLite(t.Context(), path) }, raw}
}

func postgresSchemaDB(t *testing.T) schemaDB {
	u := pgtest.FreshSchema(t, pgtest.URL(t, "PostgreSQL store tests"))
	raw, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return schemaDB{func() (*store.DB, error) { return store.OpenPostgres(t.Context(), u) }, raw}
}

func TestSchemaVersionsSQLite(t *testing.T)   { testSchemaVersions(t, sqliteSchemaDB(t)) }
func TestSchemaVersionsPostgres(t *testing.T) { testSchemaVersions(t, postgresSchemaDB(t)) }

// testSchemaVersions: a binary keeps running on a schema a newer one has
// expanded, and refuses, naming both versions, one the newer binary has
// contracted past it.
func testSchemaVersions(t *testing.T, db schemaDB) {
	level := store.SchemaLevel()
	reopen := func() (store.SchemaInfo, error) {
		s, err := db.open()
		if err != nil {
			return store.SchemaInfo{}, err
		}
		defer s.Close()
		return s.Schema(t.Context())
	}
	info, err := reopen()
	if err != nil || info.Version != level {
		t.Fatalf("fresh database: %+v, %v; want version %d", info, err, level)
	}

	// Release N+1 expands the schema: N keeps running on it.
	t.Run("expanded", func(t *testing.T) {
		store.WithMigrationForTest(t, 0, "CREATE TABLE expanded_by_next (id INTEGER PRIMARY KEY)")
		if info, err := reopen(); err != nil || info.Version != level+1 {
			t.Fatalf("release N+1: %+v, %v", info, err)
		}
	})
	info, err = reopen()
	if err != nil || info.Version != level+1 || info.MinLevel > level {
		t.Fatalf("release N on the expanded schema: %+v, %v; want it accepted", info, err)
	}

	// Release N+2 contracts it: N is refused, N+2 runs.
	t.Run("contracted", func(t *testing.T) {
		store.WithMigrationForTest(t, 0, "SELECT 1")
		store.WithMigrationForTest(t, level+2, "DROP TABLE expanded_by_next")
		if info, err := reopen(); err != nil || info.Version != level+2 || info.MinLevel != level+2 {
			t.Fatalf("release N+2: %+v, %v", info, err)
		}
	})
	_, err = reopen()
	want := []string{fmt.Sprintf("schema version %d", level+2), fmt.Sprintf("schema level %d or newer", level+2),
		fmt.Sprintf("this binary's schema level is %d", level)}
	if !errors.Is(err, store.ErrSchemaTooNew) || !containsAll(err.Error(), want) {
		t.Fatalf("release N on the contracted schema: err = %v; want ErrSchemaTooNew naming %q", err, want)
	}

	// The refused binary changed nothing.
	var n int
	if err := db.raw.QueryRow("SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil || n != level+2 {
		t.Fatalf("schema_migrations holds %d rows, %v; want %d", n, err, level+2)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestRollingUpgradeSecretsTable is the rolling upgrade of
// docs/operations.md: release N (schema level 6) keeps running after
// N+1 added the secrets table (migration 7, expanding), and still finds
// the client secret where it kept it.
func TestRollingUpgradeSecretsTable(t *testing.T) {
	db := sqliteSchemaDB(t)
	t.Run("release N", func(t *testing.T) {
		store.AsReleaseForTest(t, 6)
		s, err := db.open()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.SetSetting(t.Context(), "idp-client-secret", []byte("sealed")); err != nil {
			t.Fatal(err)
		}
	})
	s, err := db.open() // release N+1 expands
	if err != nil {
		t.Fatal(err)
	}
	sec, err := s.Secret(t.Context(), "idp-client-secret")
	s.Close()
	if err != nil || string(sec.Value) != "sealed" {
		t.Fatalf("N+1 reads the copied client secret: %v, %v", sec, err)
	}
	t.Run("release N again", func(t *testing.T) {
		store.AsReleaseForTest(t, 6)
		s, err := db.open()
		if err != nil {
			t.Fatalf("release N on the expanded schema: %v", err)
		}
		defer s.Close()
		if v, err := s.Setting(t.Context(), "idp-client-secret"); err != nil || string(v) != "sealed" {
			t.Fatalf("release N's client secret: %q, %v", v, err)
		}
	})
}

// TestDeviceVersionColumns: an update of every column of devices but
// last_seen gives the row a new version, so that the netmap fan-out
// re-reads it (see DeviceVersions). A new column fails this until a
// migration recreates the triggers with it.
func TestDeviceVersionColumns(t *testing.T) {
	db := sqliteSchemaDB(t)
	st, err := db.open()
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	rows, err := db.raw.Query("SELECT name FROM pragma_table_info('devices') ORDER BY cid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c != "last_seen" && c != "version" {
			cols = append(cols, c)
		}
	}
	if want := strings.Join(strings.Fields(strings.ReplaceAll(store.DeviceVersionCols, ",", " ")), " "); strings.Join(cols, " ") != want {
		t.Fatalf("devices has the columns\n%s\nthe version triggers watch\n%s\nadd a migration that recreates them (see migration 23)", strings.Join(cols, " "), want)
	}
}
