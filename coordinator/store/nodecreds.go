package store

import (
	"context"
	"time"
)

// NodeCredential is one credential of a node: its current one, or the
// previous one while a rotation's overlap lasts.
type NodeCredential struct {
	Hash     []byte // SHA-256 of the credential
	DeviceID string
	Issued   time.Time
	Expires  time.Time // zero: never
}

// Live reports whether the credential works at now.
func (c *NodeCredential) Live(now time.Time) bool {
	return c.Expires.IsZero() || now.Before(c.Expires)
}

// AddNodeCredential records a node credential issued at enrollment.
func (s *DB) AddNodeCredential(ctx context.Context, c *NodeCredential) error {
	_, err := s.wr().exec(ctx, "INSERT INTO node_credentials (hash, device_id, issued, expires) VALUES (?, ?, ?, ?)",
		c.Hash, c.DeviceID, s.d.timeArg(c.Issued), s.d.timeArg(c.Expires))
	return s.fail("add node credential", err)
}

// NodeCredential returns the credential with hash, live or not.
func (s *DB) NodeCredential(ctx context.Context, hash []byte) (*NodeCredential, error) {
	c, err := getOne(ctx, s.rd(), func(r scanner) (*NodeCredential, error) {
		c := &NodeCredential{Hash: hash}
		return c, r.Scan(&c.DeviceID, timeCol{&c.Issued}, timeCol{&c.Expires})
	}, "SELECT device_id, issued, expires FROM node_credentials WHERE hash = ?", hash)
	return c, s.fail("node credential", err)
}

// RotateNodeCredential makes next node id's current credential, in one
// transaction: every credential of the node still live at now works
// until overlapEnd at the latest (so requests in flight with it finish),
// and the device's credential hash becomes next's. Of two rotations at
// once, both succeed and the later one's credential is current; the
// other's works until its overlap ends.
func (s *DB) RotateNodeCredential(ctx context.Context, id string, next *NodeCredential, now, overlapEnd time.Time) error {
	err := s.inTx(ctx, func(c conn) error {
		// A node joined before node_credentials has no row for its
		// credential: it gets one, so that it too has the overlap.
		if _, err := c.exec(ctx, `INSERT INTO node_credentials (hash, device_id, issued, expires)
			SELECT cred_hash, id, created, NULL FROM devices WHERE id = ? AND cred_hash IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM node_credentials WHERE hash = devices.cred_hash)`, id); err != nil {
			return err
		}
		if err := c.execOne(ctx, "UPDATE devices SET cred_hash = ? WHERE id = ?", next.Hash, id); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `UPDATE node_credentials SET expires = ?
			WHERE device_id = ? AND (expires IS NULL OR expires > ?)`,
			s.d.timeArg(overlapEnd), id, s.d.timeArg(overlapEnd)); err != nil {
			return err
		}
		_, err := c.exec(ctx, "INSERT INTO node_credentials (hash, device_id, issued, expires) VALUES (?, ?, ?, ?)",
			next.Hash, id, s.d.timeArg(next.Issued), s.d.timeArg(next.Expires))
		return err
	})
	return s.fail("rotate the credential of "+id, err)
}

// DeleteExpiredNodeCredentials forgets the previous credentials whose
// overlap ended before before (a node's current one is kept, expired or
// not, for its age and expiry).
func (s *DB) DeleteExpiredNodeCredentials(ctx context.Context, before time.Time) error {
	_, err := s.wr().exec(ctx, `DELETE FROM node_credentials WHERE expires < ?
		AND hash NOT IN (SELECT cred_hash FROM devices WHERE cred_hash IS NOT NULL)`, s.d.timeArg(before))
	return s.fail("delete expired node credentials", err)
}

// CurrentNodeCredentials returns each node's current credential by node
// id (nodes joined before node_credentials and not rotated since have
// none).
func (s *DB) CurrentNodeCredentials(ctx context.Context) (map[string]*NodeCredential, error) {
	cs, err := getAll(ctx, s.rd(), func(r scanner) (*NodeCredential, error) {
		c := new(NodeCredential)
		return c, r.Scan(&c.Hash, &c.DeviceID, timeCol{&c.Issued}, timeCol{&c.Expires})
	}, `SELECT c.hash, c.device_id, c.issued, c.expires FROM node_credentials c
		JOIN devices d ON d.id = c.device_id AND d.cred_hash = c.hash`)
	out := make(map[string]*NodeCredential, len(cs))
	for _, c := range cs {
		out[c.DeviceID] = c
	}
	return out, s.fail("current node credentials", err)
}
