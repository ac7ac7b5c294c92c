package store

import (
	"context"
	"fmt"
	"time"
)

// migrate applies the migrations the database lacks, each in its own
// transaction together with its row in schema_migrations. On PostgreSQL
// an advisory lock makes replicas that start together take turns; on
// SQLite BEGIN IMMEDIATE does the same.
func (s *DB) migrate(ctx context.Context) error {
	for _, m := range migrations {
		if err := s.inTx(ctx, func(c conn) error { return s.applyMigration(ctx, c, m) }); err != nil {
			return fmt.Errorf("migrate to version %d (%s): %w", m.version, m.name, err)
		}
	}
	return nil
}

// applyMigration applies m in the transaction c unless it is recorded.
func (s *DB) applyMigration(ctx context.Context, c conn, m migration) error {
	if err := s.d.lockMigrations(ctx, c.q); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	create := s.d.types.Replace(`CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name    TEXT NOT NULL,
		applied {{time}} NOT NULL
	)`)
	if _, err := c.exec(ctx, create); err != nil {
		return err
	}
	var n int
	if err := c.row(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for i, stmt := range m.stmts {
		if _, err := c.exec(ctx, s.d.types.Replace(stmt)); err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		}
	}
	_, err := c.exec(ctx, "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)",
		m.version, m.name, s.d.timeArg(time.Now()))
	return err
}
