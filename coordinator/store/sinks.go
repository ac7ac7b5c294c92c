package store

import (
	"context"
	"fmt"
	"time"
)

// AdminActionsAfter returns the admin trail's entries with an ID above
// after, lowest first; limit ≤ 0 means 100, at most 10,000.
func (s *DB) AdminActionsAfter(ctx context.Context, after int64, limit int) ([]*AdminAction, error) {
	as, err := getAll(ctx, s.rd(), scanAdminAction, "SELECT "+adminActionCols+
		" FROM admin_actions WHERE id > ? ORDER BY id LIMIT ?", after, clampLimit(limit, 100, 10000))
	return as, s.fail("admin actions after", err)
}

// AuditHeads returns the last audit seq given and the last admin action
// ID: where a sink's cursors are when it has delivered everything.
func (s *DB) AuditHeads(ctx context.Context) (records, actions int64, err error) {
	err = s.rd().row(ctx, `SELECT COALESCE(SUM(CASE name WHEN 'audit' THEN value END), 0),
		COALESCE(SUM(CASE name WHEN 'admin' THEN value END), 0) FROM audit_counter`).Scan(&records, &actions)
	return records, actions, s.fail("audit heads", err)
}

// SinkCursor returns how far sink has delivered stream; 0 before its
// first delivery.
func (s *DB) SinkCursor(ctx context.Context, sink, stream string) (int64, error) {
	var seq int64
	err := s.rd().row(ctx, "SELECT COALESCE(MAX(seq), 0) FROM audit_sink_cursors WHERE sink = ? AND stream = ?",
		sink, stream).Scan(&seq)
	return seq, s.fail("sink cursor", err)
}

// AdvanceSinkCursor moves sink's cursor on stream from from to to, only
// if it is still at from: a replica that has lost the lead cannot move it
// back (ErrConflict).
func (s *DB) AdvanceSinkCursor(ctx context.Context, sink, stream string, from, to int64) error {
	res, err := s.wr().exec(ctx, `INSERT INTO audit_sink_cursors (sink, stream, seq, updated) VALUES (?, ?, ?, ?)
		ON CONFLICT (sink, stream) DO UPDATE SET seq = excluded.seq, updated = excluded.updated
		WHERE audit_sink_cursors.seq = ?`, sink, stream, to, s.d.timeArg(time.Now()), from)
	if err != nil {
		return s.fail("advance sink cursor", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return s.fail("advance sink cursor", fmt.Errorf("%w: %s/%s is no longer at %d", ErrConflict, sink, stream, from))
	}
	return nil
}
