package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// AuditCut stands for a run of one node's chain that retention deleted:
// records First to Last, the hash the first chained to (Prev) and the
// chain head at the cut (Head). Seal is the caller's seal over those
// fields; the store only keeps it.
type AuditCut struct {
	ID          string
	NodeID      string
	First, Last uint64
	Prev, Head  string
	Time        time.Time // when the cut was made or last extended
	Seal        []byte
}

const auditCutCols = "id, node_id, first_seq, last_seq, prev, head, cut_at, seal"

func scanAuditCut(r scanner) (*AuditCut, error) {
	c := new(AuditCut)
	err := r.Scan(&c.ID, &c.NodeID, &c.First, &c.Last, &c.Prev, &c.Head, timeCol{&c.Time}, &c.Seal)
	return c, err
}

// ExpiredAudit returns records whose event time is before before, with
// an ingestion seq above after, in ingestion order; limit ≤ 0 means 100,
// at most 10,000. Retention pages through them with after.
func (s *DB) ExpiredAudit(ctx context.Context, before time.Time, after int64, limit int) ([]*AuditRecord, error) {
	recs, err := getAll(ctx, s.rd(), scanAudit, "SELECT "+auditCols+
		" FROM audit WHERE at < ? AND seq > ? ORDER BY seq LIMIT ?",
		s.d.timeArg(before), after, clampLimit(limit, 100, 10000))
	return recs, s.fail("expired audit", err)
}

// AuditCuts returns the cuts of node, or of every node when node is "",
// by node and First.
func (s *DB) AuditCuts(ctx context.Context, node string) ([]*AuditCut, error) {
	q, args := "SELECT "+auditCutCols+" FROM audit_cuts", []any{}
	if node != "" {
		q, args = q+" WHERE node_id = ?", append(args, node)
	}
	cuts, err := getAll(ctx, s.rd(), scanAuditCut, q+" ORDER BY node_id, first_seq, id", args...)
	return cuts, s.fail("audit cuts", err)
}

// CutAudit deletes the audit records ids of node and replaces its cuts
// replace with cuts, in one transaction. When one of replace is gone (a
// replica that has lost the lead did the same work) nothing changes and
// the error wraps ErrConflict.
func (s *DB) CutAudit(ctx context.Context, node string, ids, replace []string, cuts []*AuditCut) error {
	err := s.inTx(ctx, func(c conn) error {
		for _, id := range replace {
			if err := c.execOne(ctx, "DELETE FROM audit_cuts WHERE id = ? AND node_id = ?", id, node); err != nil {
				return fmt.Errorf("cut %s: %w", id, orConflict(err))
			}
		}
		for _, cut := range cuts {
			if cut.NodeID != node {
				return fmt.Errorf("cut %s belongs to node %s, not %s", cut.ID, cut.NodeID, node)
			}
			if _, err := c.exec(ctx, "INSERT INTO audit_cuts ("+auditCutCols+") VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
				cut.ID, cut.NodeID, int64(cut.First), int64(cut.Last), cut.Prev, cut.Head, s.d.timeArg(cut.Time), cut.Seal); err != nil {
				return fmt.Errorf("cut %s: %w", cut.ID, err)
			}
		}
		return deleteAuditRecords(ctx, c, node, ids)
	})
	return s.fail("cut audit", err)
}

// deleteAuditRecords deletes node's records ids, and their scrubs, a few
// hundred a statement.
func deleteAuditRecords(ctx context.Context, c conn, node string, ids []string) error {
	const batch = 500
	for len(ids) > 0 {
		n := min(len(ids), batch)
		args := []any{node}
		for _, id := range ids[:n] {
			args = append(args, id)
		}
		in := " WHERE node_id = ? AND id IN (?" + strings.Repeat(", ?", n-1) + ")"
		for _, table := range []string{"audit", "audit_scrubs"} {
			if _, err := c.exec(ctx, "DELETE FROM "+table+in, args...); err != nil {
				return fmt.Errorf("delete audit records: %w", err)
			}
		}
		ids = ids[n:]
	}
	return nil
}

// orConflict turns ErrNotFound (the row another writer removed) into
// ErrConflict.
func orConflict(err error) error {
	if err == ErrNotFound {
		return fmt.Errorf("%w: changed by another replica", ErrConflict)
	}
	return err
}
