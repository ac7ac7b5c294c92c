package store_test

import (
	"database/sql"
	"sync"
	"testing"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/coordinator/store/storetest"
	"github.com/moatmesh/moat/internal/pgtest"
)

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
	base := pgtest.URL(t, "PostgreSQL store tests")
	storetest.Run(t, func(t *testing.T) storetest.Store { return openPostgres(t, pgtest.FreshSchema(t, base)) })
}

func TestPostgresRestart(t *testing.T) {
	u := pgtest.FreshSchema(t, pgtest.URL(t, "PostgreSQL store tests"))
	storetest.RunRestart(t, func(t *testing.T) storetest.Store { return openPostgres(t, u) })
}

// TestPostgresMigrateRace starts several replicas on one empty database
// at once: the advisory lock lets each migration run exactly once.
func TestPostgresMigrateRace(t *testing.T) {
	u := pgtest.FreshSchema(t, pgtest.URL(t, "PostgreSQL store tests"))
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
