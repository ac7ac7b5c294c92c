// Package pgtest gives tests a PostgreSQL database of their own: the
// server `make test` starts (scripts/with-postgres.sh, which sets
// MOAT_TEST_POSTGRES), and a fresh schema on it per test.
package pgtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// EnvURL names the environment variable holding the server's URL.
const EnvURL = "MOAT_TEST_POSTGRES"

// URL returns the server's URL. Without one the test skips, saying why —
// except as root in CI (CI=true), where `make test` starts one and its
// absence is a failure. what names the tests, e.g. "PostgreSQL store
// tests".
func URL(t testing.TB, what string) string {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	const how = EnvURL + " is not set; `make test` sets it as root through scripts/with-postgres.sh"
	if os.Getenv("CI") == "true" && os.Geteuid() == 0 {
		t.Fatal(what + " cannot run in CI: " + how)
	}
	t.Skip(what + " skipped: " + how)
	return ""
}

// FreshSchema creates an empty schema on the server at base, dropped
// when t ends, and returns a URL whose connections use it.
func FreshSchema(t testing.TB, base string) string {
	t.Helper()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "moat_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
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
