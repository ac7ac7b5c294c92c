package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

const auditCols = `id, node_id, at, user_id, login, device_id, model, api, decision, reason,
	grant_name, tokens_in, tokens_out, latency_ms, status, body`

func scanAudit(r scanner) (*AuditRecord, error) {
	a := new(AuditRecord)
	err := r.Scan(&a.ID, &a.NodeID, timeCol{&a.Time}, &a.UserID, &a.Login, &a.DeviceID, &a.Model,
		&a.API, &a.Decision, &a.Reason, &a.Grant, &a.TokensIn, &a.TokensOut, &a.LatencyMS,
		&a.Status, &a.Body)
	return a, err
}

// InsertAudit implements Store, in one transaction. Every record needs an
// ID and a Time.
func (s *DB) InsertAudit(ctx context.Context, recs []*AuditRecord) (int, error) {
	for _, a := range recs {
		if a.ID == "" || a.Time.IsZero() {
			return 0, s.fail("insert audit", errors.New("record without id or time"))
		}
	}
	inserted := 0
	err := s.inTx(ctx, func(c conn) error {
		inserted = 0
		for _, a := range recs {
			res, err := c.exec(ctx, `INSERT INTO audit (`+auditCols+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
				a.ID, a.NodeID, s.d.timeArg(a.Time), a.UserID, a.Login, a.DeviceID, a.Model, a.API,
				a.Decision, a.Reason, a.Grant, a.TokensIn, a.TokensOut, a.LatencyMS, a.Status,
				blobArg(a.Body))
			if err != nil {
				return fmt.Errorf("record %s: %w", a.ID, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			inserted += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, s.fail("insert audit", err)
	}
	return inserted, nil
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
		{"node_id", f.NodeID}, {"decision", f.Decision},
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
