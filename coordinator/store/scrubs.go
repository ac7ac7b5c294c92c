package store

import (
	"context"
	"time"
)

// AuditScrub stands for an audit record whose clear prompt was encrypted
// or removed after the node chained it: Hash is the hash the node gave
// it, BodySHA256 the hex SHA-256 of its body since. Seal is the caller's
// seal over those fields; the store only keeps it.
type AuditScrub struct {
	ID         string // the record's
	NodeID     string
	Hash       string
	BodySHA256 string
	Time       time.Time
	Seal       []byte
}

const auditScrubCols = "id, node_id, hash, body_sha256, scrubbed, seal"

func scanAuditScrub(r scanner) (*AuditScrub, error) {
	c := new(AuditScrub)
	err := r.Scan(&c.ID, &c.NodeID, &c.Hash, &c.BodySHA256, timeCol{&c.Time}, &c.Seal)
	return c, err
}

// AuditScrub returns the scrub of record id, or ErrNotFound.
func (s *DB) AuditScrub(ctx context.Context, id string) (*AuditScrub, error) {
	c, err := getOne(ctx, s.rd(), scanAuditScrub, "SELECT "+auditScrubCols+" FROM audit_scrubs WHERE id = ?", id)
	return c, s.fail("audit scrub "+id, err)
}

// ScrubAudit replaces the body of record sc.ID, which must still be old,
// with body and stores sc, in one transaction. When the body changed
// meanwhile (another replica scrubbed it) nothing changes and the error
// wraps ErrConflict.
func (s *DB) ScrubAudit(ctx context.Context, old, body []byte, sc *AuditScrub) error {
	err := s.inTx(ctx, func(c conn) error {
		if err := c.execOne(ctx, "UPDATE audit SET body = ? WHERE id = ? AND node_id = ? AND body = ?",
			body, sc.ID, sc.NodeID, old); err != nil {
			return orConflict(err)
		}
		_, err := c.exec(ctx, "INSERT INTO audit_scrubs ("+auditScrubCols+") VALUES (?, ?, ?, ?, ?, ?)",
			sc.ID, sc.NodeID, sc.Hash, sc.BodySHA256, s.d.timeArg(sc.Time), sc.Seal)
		return err
	})
	return s.fail("scrub audit record "+sc.ID, err)
}
