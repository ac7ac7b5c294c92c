package store_test

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/pgtest"
)

// waitFor fails t unless cond holds within 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestLeaderPostgres: of two replicas only one leads; when the leader's
// connection dies the other takes over, and the old one does not claim
// it back; a leader that closes hands over too.
func TestLeaderPostgres(t *testing.T) {
	u := pgtest.FreshSchema(t, pgtest.URL(t, "PostgreSQL leader tests"))
	a, b := openPostgres(t, u), openPostgres(t, u)
	const every = 50 * time.Millisecond
	la := a.Leader("sink", every)
	defer la.Close()
	waitFor(t, "the first replica to lead", la.IsLeader)
	lb := b.Leader("sink", every)
	defer lb.Close()
	other := b.Leader("retention", every) // another job is another lock
	defer other.Close()
	waitFor(t, "the other job's leader", other.IsLeader)
	waitFor(t, "the second replica to try three times", func() bool { return lb.Tries() >= 3 })
	if lb.IsLeader() || !la.IsLeader() {
		t.Fatalf("leaders: first %t, second %t; want only the first", la.IsLeader(), lb.IsLeader())
	}
	// Kill the leader's connection, as a crash or a network cut would.
	db, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	killLeaderConn(t, db)
	waitFor(t, "the second replica to take over", lb.IsLeader)
	waitFor(t, "the first to notice", func() bool { return !la.IsLeader() })
	before := la.Tries()
	waitFor(t, "the first to try again", func() bool { return la.Tries() >= before+3 })
	if la.IsLeader() {
		t.Fatal("both replicas lead")
	}
	lb.Close()
	waitFor(t, "the first to lead again after the second closed", la.IsLeader)
}

// killLeaderConn terminates the backend holding the "sink" lock.
func killLeaderConn(t *testing.T, db *sql.DB) {
	t.Helper()
	var n int
	err := db.QueryRow(`SELECT COUNT(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid::bigint = $1
		AND objid::bigint = (hashtext(current_schema() || ':sink')::bigint & 4294967295)`, 0x6c656164).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("terminate the leader's connection: %d, %v", n, err)
	}
}

func TestLeaderSQLite(t *testing.T) {
	s, err := store.Open(t.Context(), "", filepath.Join(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l := s.Leader("sink", 0)
	defer l.Close()
	if !l.IsLeader() {
		t.Fatal("SQLite: not the leader")
	}
}
