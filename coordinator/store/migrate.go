package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Schema levels. A binary's schema level is the version of the newest
// migration it knows (SchemaLevel). Migrations are expand/contract: an
// expanding one (new tables, new columns with defaults, copied data)
// leaves the schema usable by the binaries that ran before it, so during
// a rolling upgrade version N keeps running while N+1 expands the schema;
// a contracting one (dropping or renaming what older binaries still read)
// raises the schema's minimum level, recorded in schema_compat, and a
// binary below that minimum refuses to start.

// ErrSchemaTooNew is returned (wrapped, by Open) when the database's
// schema needs a newer binary than this one.
var ErrSchemaTooNew = errors.New("database schema is too new for this binary")

// SchemaLevel is the schema level of this binary: the version of the
// newest migration it knows.
func SchemaLevel() int { return migrations[len(migrations)-1].version }

// SchemaInfo describes a database's schema.
type SchemaInfo struct {
	// Version is the newest migration applied.
	Version int
	// MinLevel is the lowest binary schema level that may use it.
	MinLevel int
}

// migrate checks that this binary may use the schema, then applies the
// migrations the database lacks, each in its own transaction together
// with its row in schema_migrations. On PostgreSQL an advisory lock
// makes replicas that start together take turns; on SQLite BEGIN
// IMMEDIATE does the same.
func (s *DB) migrate(ctx context.Context) error {
	err := s.inTx(ctx, func(c conn) error {
		info, err := s.lockedSchema(ctx, c)
		if err != nil {
			return err
		}
		return checkLevel(info, SchemaLevel())
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range migrations {
		if err := s.inTx(ctx, func(c conn) error { return s.applyMigration(ctx, c, m) }); err != nil {
			return fmt.Errorf("migrate to version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// checkLevel refuses a schema whose minimum level is above level.
func checkLevel(info SchemaInfo, level int) error {
	if level >= info.MinLevel {
		return nil
	}
	return fmt.Errorf("%w: the database is at schema version %d and needs a binary of schema level %d or newer; this binary's schema level is %d: upgrade moat-coordinator on this machine to the release the other replicas run",
		ErrSchemaTooNew, info.Version, info.MinLevel, level)
}

// Schema reports the database's schema version and minimum level.
func (s *DB) Schema(ctx context.Context) (SchemaInfo, error) {
	var info SchemaInfo
	err := s.inTx(ctx, func(c conn) (err error) {
		info, err = s.lockedSchema(ctx, c)
		return err
	})
	return info, err
}

// lockedSchema takes the migration lock in c, creates the bookkeeping
// tables when missing and reads the schema's version and minimum level.
func (s *DB) lockedSchema(ctx context.Context, c conn) (SchemaInfo, error) {
	var info SchemaInfo
	if err := s.d.lockMigrations(ctx, c.q); err != nil {
		return info, fmt.Errorf("lock: %w", err)
	}
	for _, create := range []string{`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name    TEXT NOT NULL,
		applied {{time}} NOT NULL
	)`, `CREATE TABLE IF NOT EXISTS schema_compat (
		id        INTEGER PRIMARY KEY CHECK (id = 1),
		min_level INTEGER NOT NULL
	)`} {
		if _, err := c.exec(ctx, s.d.types.Replace(create)); err != nil {
			return info, err
		}
	}
	if err := c.row(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&info.Version); err != nil {
		return info, err
	}
	err := c.row(ctx, "SELECT COALESCE(MAX(min_level), 0) FROM schema_compat").Scan(&info.MinLevel)
	return info, err
}

// applyMigration applies m in the transaction c unless it is recorded,
// raising the schema's minimum level to m.minLevel.
func (s *DB) applyMigration(ctx context.Context, c conn, m migration) error {
	info, err := s.lockedSchema(ctx, c)
	if err != nil {
		return err
	}
	if err := checkLevel(info, SchemaLevel()); err != nil {
		return err // a newer replica contracted the schema meanwhile
	}
	var n int
	if err := c.row(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for i, stmt := range slices.Concat(m.stmts, m.only[s.d.name]) {
		if _, err := c.exec(ctx, s.d.types.Replace(stmt)); err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		}
	}
	if m.minLevel > 0 {
		if err := s.raiseMinLevel(ctx, c, m.minLevel); err != nil {
			return err
		}
	}
	_, err = c.exec(ctx, "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
		m.version, m.name, s.d.timeArg(time.Now()))
	return err
}

// raiseMinLevel records level as the schema's minimum unless it is
// already higher.
func (s *DB) raiseMinLevel(ctx context.Context, c conn, level int) error {
	_, err := c.exec(ctx, `INSERT INTO schema_compat (id, min_level) VALUES (1, ?)
		ON CONFLICT (id) DO UPDATE SET min_level = CASE
			WHEN schema_compat.min_level > excluded.min_level THEN schema_compat.min_level
			ELSE excluded.min_level END`, level)
	return err
}
