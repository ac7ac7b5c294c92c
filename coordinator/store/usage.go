package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
	"unicode/utf8"
)

// Usage: the organisation's day counters behind tokensPerDay, one row per
// (person, grant, UTC day) in usage_day, and its minute counters behind
// rpm and tpm in usage_minute. Nodes lease tokens from them
// (coordinator/lease.go): a lease is charged when granted and what a node
// did not use is given back. Each change is one statement, so replicas
// sharing the database never grant the same tokens twice.

// Lease charges up to want tokens of the day's counter of (person, grant)
// against limit, after giving back ret tokens of an earlier lease, and
// returns the tokens granted (less than want when fewer are left, 0 when
// none) and the counter after it. ret never takes the counter below zero.
// extra is charged beyond the limit (tokens a node admitted on its own
// while it could not reach the coordinator).
func (s *DB) Lease(ctx context.Context, person, grant string, day, limit, want, ret, extra int64) (granted, used int64, err error) {
	return s.lease(ctx, leaseDay, person, grant, day, limit, want, ret, extra)
}

// LeaseMinute is Lease for the counter of (person, name) in one UTC
// minute (Unix seconds / 60), in usage_minute: the counters behind rpm
// and tpm (name "grants[N]:rpm").
func (s *DB) LeaseMinute(ctx context.Context, person, name string, minute, limit, want, ret, extra int64) (granted, used int64, err error) {
	return s.lease(ctx, leaseMinute, person, name, minute, limit, want, ret, extra)
}

// The lease statements of usage_day and usage_minute.
var (
	leaseDay    = leaseQuery("usage_day", "day")
	leaseMinute = leaseQuery("usage_minute", "minute")
)

// leaseQuery is the one statement of a lease on table, whose rows are
// keyed by (person, grant_id, period).
func leaseQuery(table, period string) string {
	// base is the counter after the return and the extra charge; every
	// expression on the right of SET sees the row before the update.
	base := `CASE WHEN ` + table + `.tokens - ? < 0 THEN 0 ELSE ` + table + `.tokens - ? END + ?`
	grantExpr := `CASE WHEN ? - (` + base + `) <= 0 THEN 0
		WHEN ? - (` + base + `) < ? THEN ? - (` + base + `) ELSE ? END`
	return `INSERT INTO ` + table + ` (person, grant_id, ` + period + `, tokens, leased)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (person, grant_id, ` + period + `) DO UPDATE SET
			leased = ` + grantExpr + `,
			tokens = ` + base + ` + ` + grantExpr + `
		RETURNING leased, tokens`
}

// lease runs q, a leaseQuery, for the counter of (person, grant) in period.
func (s *DB) lease(ctx context.Context, q, person, grant string, period, limit, want, ret, extra int64) (granted, used int64, err error) {
	if want < 0 || ret < 0 || extra < 0 || limit < 0 {
		return 0, 0, s.fail("lease", errors.New("negative tokens"))
	}
	first := min(want, max(limit-extra, 0))
	g := []any{limit, ret, ret, extra, limit, ret, ret, extra, want, limit, ret, ret, extra, want}
	args := append([]any{person, grant, period, extra + first, first}, g...)
	args = append(args, ret, ret, extra)
	args = append(args, g...)
	err = s.wr().row(ctx, q, args...).Scan(&granted, &used)
	return granted, used, s.fail("lease", err)
}

// DayUsage returns the day's counter of (person, grant); 0 when none.
func (s *DB) DayUsage(ctx context.Context, person, grant string, day int64) (int64, error) {
	var n int64
	err := s.rd().row(ctx, "SELECT tokens FROM usage_day WHERE person = ? AND grant_id = ? AND day = ?", person, grant, day).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, s.fail("day usage", err)
}

// DeleteUsageBefore forgets the counters of days before day.
func (s *DB) DeleteUsageBefore(ctx context.Context, day int64) error {
	_, err := s.wr().exec(ctx, "DELETE FROM usage_day WHERE day < ?", day)
	return s.fail("delete old usage", err)
}

// DeleteMinutesBefore forgets the minute counters of minutes before
// minute.
func (s *DB) DeleteMinutesBefore(ctx context.Context, minute int64) error {
	_, err := s.wr().exec(ctx, "DELETE FROM usage_minute WHERE minute < ?", minute)
	return s.fail("delete old minute counters", err)
}

// UsageRow is the answered use of one person (or tagged device: no
// login) of one model on one node in a time range, from the audit
// records: what the usage pages and the admin API chart. Budgets are not
// counted from it (see Lease): audit retention bounds how far back it
// reaches.
type UsageRow struct {
	UserID, Login, Model, NodeID  string
	Requests, TokensIn, TokensOut int64
}

// Usage sums the allowed requests with at in [since, until) per user,
// model and node.
func (s *DB) Usage(ctx context.Context, since, until time.Time) ([]UsageRow, error) {
	rows, err := getAll(ctx, s.rd(), func(sc scanner) (UsageRow, error) {
		var r UsageRow
		err := sc.Scan(&r.UserID, &r.Login, &r.Model, &r.NodeID, &r.Requests, &r.TokensIn, &r.TokensOut)
		return r, err
	}, `SELECT user_id, login, model, node_id, COUNT(*), COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0)
		FROM audit WHERE at >= ? AND at < ? AND decision = 'allow' GROUP BY user_id, login, model, node_id`,
		s.d.timeArg(since), s.d.timeArg(until))
	return rows, s.fail("usage", err)
}

// CounterSum returns the counter of scope and name on day; with
// prefix, the sum of every counter whose scope starts with scope (the
// counters of a budget of each person).
func (s *DB) CounterSum(ctx context.Context, scope string, prefix bool, name string, day int64) (int64, error) {
	q := "SELECT COALESCE(SUM(tokens), 0) FROM usage_day WHERE grant_id = ? AND day = ? AND person = ?"
	args := []any{name, day, scope}
	if prefix {
		q = "SELECT COALESCE(SUM(tokens), 0) FROM usage_day WHERE grant_id = ? AND day = ? AND substr(person, 1, ?) = ?"
		args = []any{name, day, utf8.RuneCountInString(scope), scope}
	}
	var n int64
	err := s.rd().row(ctx, q, args...).Scan(&n)
	return n, s.fail("counter sum", err)
}
