package store

import (
	"context"
	"time"
)

// Relays: where each replica's relay is reached, so that the relays of
// all replicas mesh (see coordinator/relaymesh.go). A replica announces
// its relay's URL at a fixed interval and forgets it when it stops; a
// replica that died stops announcing and its row ages out.

// RelayReplica is where one replica's relay is reached and the key it
// presents there, which the other replicas pin.
type RelayReplica struct {
	URL string
	Key string // the relay's public key, base64; "" from replicas before keys were announced
}

// AnnounceRelay records that replica's relay is at r at now, and deletes
// the rows of replicas not seen since before.
func (s *DB) AnnounceRelay(ctx context.Context, replica string, r RelayReplica, now, before time.Time) error {
	err := s.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `INSERT INTO relay_replicas (replica, url, relay_key, seen) VALUES (?, ?, ?, ?)
			ON CONFLICT (replica) DO UPDATE SET url = excluded.url, relay_key = excluded.relay_key, seen = excluded.seen`,
			replica, r.URL, r.Key, s.d.timeArg(now)); err != nil {
			return err
		}
		_, err := c.exec(ctx, "DELETE FROM relay_replicas WHERE seen < ?", s.d.timeArg(before))
		return err
	})
	return s.fail("announce relay", err)
}

// Relays returns each replica's relay announced after since, by replica.
func (s *DB) Relays(ctx context.Context, since time.Time) (map[string]RelayReplica, error) {
	type row struct {
		replica string
		r       RelayReplica
	}
	rows, err := getAll(ctx, s.rd(), func(r scanner) (row, error) {
		var x row
		return x, r.Scan(&x.replica, &x.r.URL, &x.r.Key)
	}, "SELECT replica, url, relay_key FROM relay_replicas WHERE seen > ?", s.d.timeArg(since))
	if err != nil {
		return nil, s.fail("relays", err)
	}
	out := make(map[string]RelayReplica, len(rows))
	for _, r := range rows {
		out[r.replica] = r.r
	}
	return out, nil
}

// ForgetRelay deletes replica's row (when it stops).
func (s *DB) ForgetRelay(ctx context.Context, replica string) error {
	_, err := s.wr().exec(ctx, "DELETE FROM relay_replicas WHERE replica = ?", replica)
	return s.fail("forget relay of "+replica, err)
}
