package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Open opens the store the coordinator's --database flag names: an empty
// dsn is the embedded SQLite database dataDir/moat.db (dataDir is created
// with mode 0700 when missing); a postgres:// or postgresql:// URL is
// PostgreSQL. Migrations run before it returns.
func Open(ctx context.Context, dsn, dataDir string) (*DB, error) {
	switch {
	case dsn == "":
		if dataDir == "" {
			return nil, errors.New("open store: no database and no data directory")
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return OpenSQLite(ctx, filepath.Join(dataDir, "moat.db"))
	case IsPostgres(dsn):
		return OpenPostgres(ctx, dsn)
	}
	return nil, errors.New("open store: database must be empty (embedded SQLite) or a postgres:// URL")
}

// sqliteBusyTimeout is how long a SQLite connection waits for another
// process's write lock (e.g. a CLI command next to the server).
const sqliteBusyTimeout = 10 * time.Second

// OpenSQLite opens (creating with mode 0600) the SQLite database at path
// and migrates it. Writes go through one connection in BEGIN IMMEDIATE
// transactions, so writers in this process queue in Go instead of failing
// with SQLITE_BUSY; reads use a separate read-only pool, which WAL mode
// lets run alongside the writer.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	w, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8)
	return start(ctx, &DB{d: sqliteDialect, w: w, r: r, path: path}, "open sqlite")
}

func sqliteDSN(path string, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	// A URI filename: %, ? and # in the path must be escaped.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// OpenPostgres connects to the PostgreSQL database at url (pgx syntax:
// postgres://user:pass@host:port/db?sslmode=…) and migrates it. It uses
// database/sql over pgx's stdlib driver so that SQLite and PostgreSQL
// share one implementation.
func OpenPostgres(ctx context.Context, url string) (*DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return start(ctx, &DB{d: postgresDialect, w: db, r: db, dsn: url}, "open postgres")
}

// start checks the database answers and migrates it.
func start(ctx context.Context, s *DB, op string) (*DB, error) {
	if err := s.w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return s, nil
}

// fillNew gives a new record a fresh ID with prefix and the current time
// as its creation time, where the caller left them empty.
func fillNew(id *string, prefix string, created *time.Time) {
	if *id == "" {
		*id = NewID(prefix)
	}
	if created.IsZero() {
		*created = time.Now()
	}
}

// NewID returns prefix followed by 20 random base32 characters (100
// bits), the form of the store's generated IDs ("u_…", "d_…").
func NewID(prefix string) string {
	var b [13]byte
	rand.Read(b[:])
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
	return prefix + strings.ToLower(s[:20])
}

// IsPostgres reports whether dsn names a PostgreSQL database (a
// postgres:// or postgresql:// URL) rather than the embedded SQLite.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}
