package store_test

import (
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/pgtest"
)

// testLease: leases are charged when granted, capped by what the limit
// has left, given back without going below zero, and concurrent leases
// never grant more than the limit together, also when they alternate
// between two replicas (s and s2 on one database).
func testLease(t *testing.T, s, s2 *store.DB) {
	c := t.Context()
	lease := func(want, ret, extra int64) (int64, int64) {
		t.Helper()
		g, u, err := s.Lease(c, "u1", "grants[0]", 100, 1000, want, ret, extra)
		if err != nil {
			t.Fatal(err)
		}
		return g, u
	}
	for _, tc := range []struct{ want, ret, extra, granted, used int64 }{
		{400, 0, 0, 400, 400},
		{400, 0, 0, 400, 800},
		{400, 0, 0, 200, 1000},  // only 200 left
		{400, 0, 0, 0, 1000},    // none left
		{100, 300, 0, 100, 800}, // 300 given back, 100 leased
		{0, 5000, 0, 0, 0},      // never below zero
		{900, 0, 300, 700, 1000},
	} {
		if g, u := lease(tc.want, tc.ret, tc.extra); g != tc.granted || u != tc.used {
			t.Fatalf("lease %+v: granted %d, counter %d", tc, g, u)
		}
	}
	if n, err := s.DayUsage(c, "u1", "grants[0]", 100); err != nil || n != 1000 {
		t.Fatalf("day usage: %d %v", n, err)
	}
	if n, _ := s.DayUsage(c, "u1", "grants[0]", 101); n != 0 {
		t.Fatalf("another day: %d", n)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	for i := range 20 {
		r := s
		if i%2 == 1 {
			r = s2
		}
		wg.Go(func() {
			g, _, err := r.Lease(c, "u2", "grants[0]", 100, 1000, 70, 0, 0)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += g
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != 1000 {
		t.Fatalf("20 concurrent leases of 70 against 1000 granted %d", total)
	}
	if err := s.DeleteUsageBefore(c, 101); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.DayUsage(c, "u2", "grants[0]", 100); n != 0 {
		t.Fatalf("old day kept: %d", n)
	}
	testLeaseMinute(t, s, s2)
}

// testLeaseMinute: minute counters lease like day counters, one per
// minute, apart from the day's, and old minutes are swept.
func testLeaseMinute(t *testing.T, s, s2 *store.DB) {
	c := t.Context()
	for _, tc := range []struct {
		db                               *store.DB
		minute, want, ret, granted, used int64
	}{
		{s, 1000, 6, 0, 6, 6},
		{s2, 1000, 6, 0, 4, 10}, // another replica: 4 left of 10
		{s, 1000, 6, 2, 2, 10},  // 2 given back and leased again
		{s2, 1001, 6, 0, 6, 6},  // the next minute starts from zero
	} {
		g, u, err := tc.db.LeaseMinute(c, "u1", "grants[0]:rpm", tc.minute, 10, tc.want, tc.ret, 0)
		if err != nil || g != tc.granted || u != tc.used {
			t.Fatalf("minute lease %+v: granted %d, counter %d, %v", tc, g, u, err)
		}
	}
	if n, _ := s.DayUsage(c, "u1", "grants[0]:rpm", 1000); n != 0 {
		t.Fatalf("a minute counter shows as a day's: %d", n)
	}
	if err := s.DeleteMinutesBefore(c, 1001); err != nil {
		t.Fatal(err)
	}
	if g, u, _ := s.LeaseMinute(c, "u1", "grants[0]:rpm", 1000, 10, 1, 0, 0); g != 1 || u != 1 {
		t.Fatalf("swept minute: granted %d, counter %d", g, u)
	}
}

func TestSQLiteLease(t *testing.T) {
	path := filepath.Join(t.TempDir(), "moat.db")
	testLease(t, openSQLite(t, path), openSQLite(t, path))
}

func TestPostgresLease(t *testing.T) {
	u := pgtest.FreshSchema(t, pgtest.URL(t, "PostgreSQL store tests"))
	a := openPostgres(t, u)
	testLease(t, a, openPostgres(t, u))
}

// testUsage: usage sums the allowed records of a time range per person,
// model and node.
func testUsage(t *testing.T, s *store.DB) {
	c := t.Context()
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	rec := func(id string, dt time.Duration, login, model, node, decision string, in, out int64) *store.AuditRecord {
		return &store.AuditRecord{ID: id, Time: at.Add(dt), UserID: "u_" + login, Login: login, Model: model, NodeID: node, Decision: decision, TokensIn: in, TokensOut: out, Body: []byte("{}")}
	}
	if _, err := s.InsertAudit(c, []*store.AuditRecord{
		rec("1", 0, "alice", "llama", "n1", "allow", 10, 5),
		rec("2", time.Minute, "alice", "llama", "n1", "allow", 20, 7),
		rec("3", time.Minute, "alice", "llama", "n1", "limit", 99, 0),
		rec("4", 2*time.Minute, "bob", "llama", "n2", "allow", 1, 1),
		rec("5", 25*time.Hour, "bob", "llama", "n2", "allow", 1000, 1000),
	}); err != nil {
		t.Fatal(err)
	}
	rows, err := s.Usage(c, at, at.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(rows, func(a, b store.UsageRow) int { return strings.Compare(a.Login, b.Login) })
	want := []store.UsageRow{
		{UserID: "u_alice", Login: "alice", Model: "llama", NodeID: "n1", Requests: 2, TokensIn: 30, TokensOut: 12},
		{UserID: "u_bob", Login: "bob", Model: "llama", NodeID: "n2", Requests: 1, TokensIn: 1, TokensOut: 1},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("usage = %+v, want %+v", rows, want)
	}
}

func TestSQLiteUsage(t *testing.T) {
	testUsage(t, openSQLite(t, filepath.Join(t.TempDir(), "moat.db")))
}

func TestPostgresUsage(t *testing.T) {
	testUsage(t, openPostgres(t, pgtest.FreshSchema(t, pgtest.URL(t, "PostgreSQL store tests"))))
}
