package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

const auditCols = `id, node_id, at, user_id, login, device_id, model, api, decision, reason,
	grant_name, tokens_in, tokens_out, latency_ms, status, body, seq`

func scanAudit(r scanner) (*AuditRecord, error) {
	a := new(AuditRecord)
	var seq sql.NullInt64
	err := r.Scan(&a.ID, &a.NodeID, timeCol{&a.Time}, &a.UserID, &a.Login, &a.DeviceID, &a.Model,
		&a.API, &a.Decision, &a.Reason, &a.Grant, &a.TokensIn, &a.TokensOut, &a.LatencyMS,
		&a.Status, &a.Body, &seq)
	a.Seq = seq.Int64
	return a, err
}

// InsertAudit implements Store, in one transaction. Every record needs an
// ID and a Time. Each record inserted gets the next ingestion sequence
// number (its Seq is filled); the counter's row lock makes concurrent
// inserts, on any replica, take their numbers in commit order, so a
// reader of seq > N never misses a row committed later with a lower seq.
func (s *DB) InsertAudit(ctx context.Context, recs []*AuditRecord) (int, error) {
	for _, a := range recs {
		if a.ID == "" || a.Time.IsZero() {
			return 0, s.fail("insert audit", errors.New("record without id or time"))
		}
	}
	inserted := 0
	err := s.inTx(ctx, func(c conn) error {
		inserted = 0
		var seq int64
		err := c.row(ctx, "SELECT value FROM audit_counter WHERE name = 'audit'"+s.d.forUpdate).Scan(&seq)
		if err != nil {
			return fmt.Errorf("audit counter: %w", err)
		}
		for _, a := range recs {
			ok, err := s.insertAuditRow(ctx, c, a, seq+1)
			if err != nil {
				return fmt.Errorf("record %s: %w", a.ID, err)
			}
			if ok {
				seq++
				a.Seq = seq
				inserted++
			}
		}
		if seq, err = numberUnsequenced(ctx, c, seq); err != nil {
			return err
		}
		_, err = c.exec(ctx, "UPDATE audit_counter SET value = ? WHERE name = 'audit'", seq)
		return err
	})
	if err != nil {
		return 0, s.fail("insert audit", err)
	}
	return inserted, nil
}

// insertAuditRow inserts a with seq unless its ID is known; ok reports
// whether it did.
func (s *DB) insertAuditRow(ctx context.Context, c conn, a *AuditRecord, seq int64) (ok bool, err error) {
	res, err := c.exec(ctx, `INSERT INTO audit (`+auditCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		a.ID, a.NodeID, s.d.timeArg(a.Time), a.UserID, a.Login, a.DeviceID, a.Model, a.API,
		a.Decision, a.Reason, a.Grant, a.TokensIn, a.TokensOut, a.LatencyMS, a.Status,
		blobArg(a.Body), seq)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// numberUnsequenced gives the rows an older binary stored without a seq
// the numbers after last, oldest first, and returns the new last.
func numberUnsequenced(ctx context.Context, c conn, last int64) (int64, error) {
	ids, err := getAll(ctx, c, func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, "SELECT id FROM audit WHERE seq IS NULL ORDER BY at, id")
	if err != nil {
		return 0, fmt.Errorf("unsequenced audit records: %w", err)
	}
	for _, id := range ids {
		last++
		if _, err := c.exec(ctx, "UPDATE audit SET seq = ? WHERE id = ?", last, id); err != nil {
			return 0, fmt.Errorf("number audit record %s: %w", id, err)
		}
	}
	return last, nil
}

// AuditAfter implements Store: the records with a seq above after, in
// ingestion order; limit ≤ 0 means 100, at most 10,000.
func (s *DB) AuditAfter(ctx context.Context, after int64, limit int) ([]*AuditRecord, error) {
	recs, err := getAll(ctx, s.rd(), scanAudit, "SELECT "+auditCols+
		" FROM audit WHERE seq > ? ORDER BY seq LIMIT ?", after, clampLimit(limit, 100, 10000))
	return recs, s.fail("audit after", err)
}

// Audit implements Store: newest first (by Time, then ID), Since
// inclusive, Until exclusive; Before names a record, and only older ones
// are returned (an unknown Before is ErrNotFound).
func (s *DB) Audit(ctx context.Context, f AuditFilter) ([]*AuditRecord, error) {
	where, args, err := s.auditWhere(ctx, f)
	if err != nil {
		return nil, s.fail("audit", err)
	}
	q := "SELECT " + auditCols + " FROM audit"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY at DESC, id DESC LIMIT ?"
	args = append(args, clampLimit(f.Limit, 100, 10000))
	recs, err := getAll(ctx, s.rd(), scanAudit, q, args...)
	return recs, s.fail("audit", err)
}

// AuditRecord implements Store: the record with id.
func (s *DB) AuditRecord(ctx context.Context, id string) (*AuditRecord, error) {
	a, err := getOne(ctx, s.rd(), scanAudit, "SELECT "+auditCols+" FROM audit WHERE id = ?", id)
	return a, s.fail("audit record", err)
}

// auditWhere turns f into WHERE conditions and their arguments.
func (s *DB) auditWhere(ctx context.Context, f AuditFilter) ([]string, []any, error) {
	var where []string
	var args []any
	add := func(cond string, vs ...any) {
		where = append(where, cond)
		args = append(args, vs...)
	}
	for _, eq := range []struct{ col, v string }{
		{"user_id", f.UserID}, {"login", f.Login}, {"model", f.Model},
		{"node_id", f.NodeID}, {"decision", f.Decision}, {"api", f.API},
	} {
		if eq.v != "" {
			add(eq.col+" = ?", eq.v)
		}
	}
	if !f.Since.IsZero() {
		add("at >= ?", s.d.timeArg(f.Since))
	}
	if !f.Until.IsZero() {
		add("at < ?", s.d.timeArg(f.Until))
	}
	if f.Before != "" {
		var at time.Time
		err := s.rd().row(ctx, "SELECT at FROM audit WHERE id = ?", f.Before).Scan(timeCol{&at})
		if err != nil {
			return nil, nil, fmt.Errorf("before record %s: %w", f.Before, err)
		}
		add("(at < ? OR (at = ? AND id < ?))", s.d.timeArg(at), s.d.timeArg(at), f.Before)
	}
	return where, args, nil
}
