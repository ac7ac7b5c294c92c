package store

import (
	"context"
	"time"
)

// Relays: where each replica's relay is reached, so that the relays of
// all replicas mesh (see coordinator/relaymesh.go). A replica announces
// its relay's URL at a fixed interval and forgets it when it stops; a
// replica that died stops announcing and its row ages out.

// AnnounceRelay records that replica's relay is at url at now, and
// deletes the rows of replicas not seen since before.
func (s *DB) AnnounceRelay(ctx context.Context, replica, url string, now, before time.Time) error {
	err := s.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `INSERT INTO relay_replicas (replica, url, seen) VALUES (?, ?, ?)
			ON CONFLICT (replica) DO UPDATE SET url = excluded.url, seen = excluded.seen`,
			replica, url, s.d.timeArg(now)); err != nil {
			return err
		}
		_, err := c.exec(ctx, "DELETE FROM relay_replicas WHERE seen < ?", s.d.timeArg(before))
		return err
	})
	return s.fail("announce relay", err)
}

// Relays returns the URL of each replica's relay announced after since,
// by replica.
func (s *DB) Relays(ctx context.Context, since time.Time) (map[string]string, error) {
	type row struct{ replica, url string }
	rows, err := getAll(ctx, s.rd(), func(r scanner) (row, error) {
		var x row
		return x, r.Scan(&x.replica, &x.url)
	}, "SELECT replica, url FROM relay_replicas WHERE seen > ?", s.d.timeArg(since))
	if err != nil {
		return nil, s.fail("relays", err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.replica] = r.url
	}
	return out, nil
}

// ForgetRelay deletes replica's row (when it stops).
func (s *DB) ForgetRelay(ctx context.Context, replica string) error {
	_, err := s.wr().exec(ctx, "DELETE FROM relay_replicas WHERE replica = ?", replica)
	return s.fail("forget relay of "+replica, err)
}
