package store

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// ErrNoSnapshot is returned by Snapshot on PostgreSQL, whose own tools
// (pg_dump) make consistent backups.
var ErrNoSnapshot = errors.New("the store makes snapshots of SQLite only; back PostgreSQL up with pg_dump (docs/operations.md)")

// Snapshot writes a consistent copy of the SQLite database to path
// (VACUUM INTO: one read transaction, so writers in WAL mode carry on),
// with mode 0600. path must not exist.
func (s *DB) Snapshot(ctx context.Context, path string) error {
	if s.d != sqliteDialect {
		return fmt.Errorf("snapshot: %w", ErrNoSnapshot)
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("snapshot: %s exists", path)
	}
	// VACUUM INTO creates the file with the process umask; make it
	// private first.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	f.Close()
	if _, err := s.w.ExecContext(ctx, "VACUUM INTO ?", path); err != nil {
		os.Remove(path)
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}
