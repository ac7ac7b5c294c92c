package store_test

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/coordinator/store/storetest"
)

// postgresURL is the server the PostgreSQL tests use. Without one they
// skip — except as root in CI (CI=true), where `make test` starts one
// (scripts/with-postgres.sh) and its absence is a failure.
func postgresURL(t *testing.T) string {
	t.Helper()
	if u := os.Getenv("MOAT_TEST_POSTGRES"); u != "" {
		return u
	}
	const how = "MOAT_TEST_POSTGRES is not set; `make test` sets it as root through scripts/with-postgres.sh"
	if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
		t.Fatal("PostgreSQL store tests cannot run in CI: " + how)
	}
	t.Skip("PostgreSQL store tests skipped: " + how)
	return ""
}

// freshSchema creates an empty schema on the server at base, dropped
// when t ends, and returns a URL whose connections use it.
func freshSchema(t *testing.T, base string) string {
	t.Helper()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 8)
	rand.Read(b)
	schema := "moat_test_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func openPostgres(t *testing.T, url string) *store.DB {
	t.Helper()
	s, err := store.Open(t.Context(), url, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPostgres(t *testing.T) {
	base := postgresURL(t)
	storetest.Run(t, func(t *testing.T) storetest.Store { return openPostgres(t, freshSchema(t, base)) })
}

func TestPostgresRestart(t *testing.T) {
	u := freshSchema(t, postgresURL(t))
	storetest.RunRestart(t, func(t *testing.T) storetest.Store { return openPostgres(t, u) })
}

// TestPostgresMigrateRace starts several replicas on one empty database
// at once: the advisory lock lets each migration run exactly once.
func TestPostgresMigrateRace(t *testing.T) {
	u := freshSchema(t, postgresURL(t))
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range cap(errs) {
		wg.Go(func() {
			s, err := store.OpenPostgres(t.Context(), u)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, versions int
	if err := db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations").Scan(&n, &versions); err != nil {
		t.Fatal(err)
	}
	if n != versions || n == 0 {
		t.Fatalf("schema_migrations: %d rows for %d versions", n, versions)
	}
}
