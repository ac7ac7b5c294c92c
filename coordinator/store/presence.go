package store

import (
	"context"
	"time"
)

// Presence: which devices hold a netmap stream, on any replica. Each open
// stream is a row naming its device and the replica serving it; the
// replica refreshes seen for all its rows at a fixed interval and deletes
// a row when its stream ends, so a device is online while one of its rows
// was seen recently. The rows of a replica that died stop being refreshed
// and age out.

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

// TouchNetmapStreams marks every stream of replica seen at now, and
// deletes the rows of any replica not seen since before (replicas that
// stopped without closing their streams).
func (s *DB) TouchNetmapStreams(ctx context.Context, replica string, now, before time.Time) error {
	err := s.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, "UPDATE netmap_streams SET seen = ? WHERE replica = ?", s.d.timeArg(now), replica); err != nil {
			return err
		}
		_, err := c.exec(ctx, "DELETE FROM netmap_streams WHERE seen < ?", s.d.timeArg(before))
		return err
	})
	return s.fail("touch netmap streams", err)
}

// CloseReplicaStreams forgets every stream of replica (when it stops).
func (s *DB) CloseReplicaStreams(ctx context.Context, replica string) error {
	_, err := s.wr().exec(ctx, "DELETE FROM netmap_streams WHERE replica = ?", replica)
	return s.fail("close netmap streams of "+replica, err)
}

// OnlineDevices returns the devices holding a stream seen after since,
// on any replica.
func (s *DB) OnlineDevices(ctx context.Context, since time.Time) (map[string]bool, error) {
	ids, err := getAll(ctx, s.rd(), func(r scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, "SELECT DISTINCT device_id FROM netmap_streams WHERE seen > ?", s.d.timeArg(since))
	if err != nil {
		return nil, s.fail("online devices", err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
