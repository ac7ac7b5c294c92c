package store

import (
	"context"
	"time"
)

// Paths: how each member last said it reaches its peers (wire.PathReport,
// kept as the JSON it came in), for the admin pages. A report is a
// display, not a decision: it is replaced by the member's next one and
// goes with the device.

// SetPaths keeps device id's path report, made at now.
func (s *DB) SetPaths(ctx context.Context, id string, report []byte, now time.Time) error {
	_, err := s.wr().exec(ctx, `INSERT INTO member_paths (device_id, report, reported) VALUES (?, ?, ?)
		ON CONFLICT (device_id) DO UPDATE SET report = excluded.report, reported = excluded.reported`,
		id, blobArg(report), s.d.timeArg(now))
	return s.fail("set paths", err)
}

// PathReport is a member's last path report as kept.
type PathReport struct {
	Report   []byte // wire.PathReport's JSON
	Reported time.Time
}

// Paths returns every member's last path report, by device id.
func (s *DB) Paths(ctx context.Context) (map[string]PathReport, error) {
	type row struct {
		id string
		r  PathReport
	}
	rows, err := getAll(ctx, s.rd(), func(r scanner) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.r.Report, timeCol{&x.r.Reported})
	}, "SELECT device_id, report, reported FROM member_paths")
	if err != nil {
		return nil, s.fail("paths", err)
	}
	out := make(map[string]PathReport, len(rows))
	for _, r := range rows {
		out[r.id] = r.r
	}
	return out, nil
}
