package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Inspection is what Inspect found out about a database.
type Inspection struct {
	Kind string // "sqlite" or "postgres"
	// Schema is the newest migration applied (0: none, a new database);
	// Want is the newest this build knows and applies at Open.
	Schema, Want int
	// Now is the database server's clock (PostgreSQL only; SQLite runs on
	// this host's).
	Now time.Time
}

// Inspect connects to the database Open would open and reads its schema
// version and clock, changing nothing: no migrations, no files created.
// It is for `moat-coordinator doctor`.
func Inspect(ctx context.Context, dsn, dataDir string) (*Inspection, error) {
	in := &Inspection{Want: migrations[len(migrations)-1].version}
	var db *sql.DB
	var err error
	switch {
	case dsn == "":
		in.Kind = "sqlite"
		path := filepath.Join(dataDir, "moat.db")
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no database at %s (serve creates it on its first start): %w", path, errors.Unwrap(err))
		}
		db, err = sql.Open("sqlite", sqliteDSN(path, true))
	case IsPostgres(dsn):
		in.Kind = "postgres"
		db, err = sql.Open("pgx", dsn)
	default:
		return nil, errors.New("database must be empty (embedded SQLite) or a postgres:// URL")
	}
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		return nil, err
	}
	if err := db.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&in.Schema); err != nil && !missingTable(err) {
		return nil, fmt.Errorf("read the schema version: %w", err)
	}
	if in.Kind == "postgres" {
		if err := db.QueryRowContext(ctx, "SELECT now()").Scan(&in.Now); err != nil {
			return nil, fmt.Errorf("read the database's clock: %w", err)
		}
	}
	return in, nil
}

// missingTable reports whether err says schema_migrations does not exist
// (a database no coordinator has started on yet).
func missingTable(err error) bool {
	s := err.Error()
	return strings.Contains(s, "no such table") || strings.Contains(s, "does not exist")
}
