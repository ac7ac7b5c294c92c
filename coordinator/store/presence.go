package store

import (
	"context"
	"time"
)

// Presence: which devices hold a netmap stream, on any replica. Each open
// stream is a row naming its device and the replica serving it, deleted
// when the stream ends; each replica marks its row in netmap_replicas
// seen at a fixed interval (one row, however many streams it holds), so
// a device is online while one of its streams' replica was seen
// recently. The rows of a replica that died stop being refreshed and age
// out with its streams.
//
// Binaries before schema version 24 judge a stream by its own row's seen
// (and delete rows older than their forget interval): replicas refresh
// those too, but only when older than half the forget interval, so that
// the update of every stream row runs once every few minutes rather than
// at every beat.

// OpenNetmapStream records that stream id of device deviceID is open on
// replica at now.
func (s *DB) OpenNetmapStream(ctx context.Context, id, deviceID, replica string, now time.Time) error {
	_, err := s.wr().exec(ctx, "INSERT INTO netmap_streams (id, device_id, replica, seen) VALUES (?, ?, ?, ?)",
		id, deviceID, replica, s.d.timeArg(now))
	return s.fail("open netmap stream", err)
}

// CloseNetmapStream forgets stream id.
func (s *DB) CloseNetmapStream(ctx context.Context, id string) error {
	_, err := s.wr().exec(ctx, "DELETE FROM netmap_streams WHERE id = ?", id)
	return s.fail("close netmap stream", err)
}

// TouchNetmapStreams marks replica seen at now, and deletes the rows of
// any replica not seen since before (replicas that stopped without
// closing their streams) with their streams. It refreshes the seen of
// replica's own stream rows only where older than halfway between before
// and now (for older binaries, see above).
func (s *DB) TouchNetmapStreams(ctx context.Context, replica string, now, before time.Time) error {
	refresh := before.Add(now.Sub(before) / 2)
	err := s.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `INSERT INTO netmap_replicas (replica, seen) VALUES (?, ?)
			ON CONFLICT (replica) DO UPDATE SET seen = excluded.seen`, replica, s.d.timeArg(now)); err != nil {
			return err
		}
		if _, err := c.exec(ctx, "UPDATE netmap_streams SET seen = ? WHERE replica = ? AND seen < ?",
			s.d.timeArg(now), replica, s.d.timeArg(refresh)); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `DELETE FROM netmap_streams WHERE seen < ? AND replica NOT IN
			(SELECT replica FROM netmap_replicas WHERE seen >= ?)`, s.d.timeArg(before), s.d.timeArg(before)); err != nil {
			return err
		}
		_, err := c.exec(ctx, "DELETE FROM netmap_replicas WHERE seen < ?", s.d.timeArg(before))
		return err
	})
	return s.fail("touch netmap streams", err)
}

// CloseReplicaStreams forgets replica and every stream of it (when it
// stops).
func (s *DB) CloseReplicaStreams(ctx context.Context, replica string) error {
	err := s.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, "DELETE FROM netmap_streams WHERE replica = ?", replica); err != nil {
			return err
		}
		_, err := c.exec(ctx, "DELETE FROM netmap_replicas WHERE replica = ?", replica)
		return err
	})
	return s.fail("close netmap streams of "+replica, err)
}

// OnlineDevices returns the devices holding a stream, on any replica,
// whose replica was seen after since (or the stream itself: the
// replicas before schema version 24).
func (s *DB) OnlineDevices(ctx context.Context, since time.Time) (map[string]bool, error) {
	ids, err := getAll(ctx, s.rd(), func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `SELECT DISTINCT s.device_id FROM netmap_streams s
		LEFT JOIN netmap_replicas r ON r.replica = s.replica
		WHERE s.seen > ? OR r.seen > ?`, s.d.timeArg(since), s.d.timeArg(since))
	if err != nil {
		return nil, s.fail("online devices", err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
