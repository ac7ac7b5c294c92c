package store_test

import (
	"path/filepath"
	"sync"
	"testing"

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
