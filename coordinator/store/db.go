package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
)

// DB is the coordinator's store over database/sql, one implementation
// for SQLite and PostgreSQL (a dialect tells them apart). Every method is
// safe for concurrent use and honours ctx. Consumers declare the few
// methods they use as an interface of their own; the contract of every
// method is written on storetest.Store, the conformance suite's view,
// which both databases pass.
type DB struct {
	d *dialect
	w *sql.DB // writes and transactions (SQLite: a single connection)
	r *sql.DB // plain reads (SQLite: a read-only pool; PostgreSQL: w)
	// dsn is PostgreSQL's connection URL, for the Bus's own connection;
	// empty for SQLite.
	dsn string
	// path is SQLite's database file, naming its in-process Bus.
	path string

	errs atomic.Uint64 // database failures (see Errors)
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// conn runs dialect-neutral queries on a querier.
type conn struct {
	q querier
	d *dialect
}

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func (s *DB) rd() conn { return conn{s.r, s.d} }
func (s *DB) wr() conn { return conn{s.w, s.d} }

func (c conn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.d.rebind(q), args...)
}

// execOne runs a statement that must change exactly one row; none is
// ErrNotFound.
func (c conn) execOne(ctx context.Context, q string, args ...any) error {
	res, err := c.exec(ctx, q, args...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

func (c conn) row(ctx context.Context, q string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.d.rebind(q), args...)
}

// getOne returns the single row q finds, decoded by scan.
func getOne[T any](ctx context.Context, c conn, scan func(scanner) (T, error), q string, args ...any) (T, error) {
	v, err := scan(c.row(ctx, q, args...))
	if err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// getAll returns every row q finds, decoded by scan.
func getAll[T any](ctx context.Context, c conn, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := c.q.QueryContext(ctx, c.d.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// inTx runs fn in a write transaction, committing when it returns nil.
func (s *DB) inTx(ctx context.Context, fn func(c conn) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(conn{tx, s.d}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// fail wraps err for op, adding the sentinel the Store contract promises:
// no rows is ErrNotFound, a unique violation ErrConflict, a missing
// referenced row (foreign key) ErrNotFound.
func (s *DB) fail(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict), errors.Is(err, ErrExhausted):
		return fmt.Errorf("%s: %w", op, err)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	case s.d.uniqueViolation(err):
		return fmt.Errorf("%s: %w: %w", op, ErrConflict, err)
	case s.d.foreignKeyViolation(err):
		return fmt.Errorf("%s: referenced row %w: %w", op, ErrNotFound, err)
	case !errors.Is(err, context.Canceled):
		s.errs.Add(1)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Ping implements Store.
func (s *DB) Ping(ctx context.Context) error {
	return s.fail("ping", s.w.PingContext(ctx))
}

// Close implements Store.
func (s *DB) Close() error {
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}
