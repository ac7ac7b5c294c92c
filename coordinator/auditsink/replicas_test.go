package auditsink

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/pgtest"
)

// tally is one replica's sink: it counts what it delivered and passes it
// on to the shared list.
type tally struct {
	name string
	mu   *sync.Mutex
	got  *[]Event
	by   map[string]int
}

func (s *tally) Deliver(_ context.Context, evs []Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.got = append(*s.got, evs...)
	s.by[s.name] += len(evs)
	return nil
}

// TestSinkReplicasPostgres: two replicas on one PostgreSQL run the same
// sink; only the one holding the leader lock delivers. When it stops,
// the other takes over from the shared cursor, and in the end every
// event was delivered, each first seen in order.
func TestSinkReplicasPostgres(t *testing.T) {
	u := pgtest.FreshSchema(t, pgtest.URL(t, "PostgreSQL sink replica tests"))
	var mu sync.Mutex
	var got []Event
	by := map[string]int{}
	count := func(name string) int { mu.Lock(); defer mu.Unlock(); return by[name] }
	delivered := func() []Event { mu.Lock(); defer mu.Unlock(); return append([]Event(nil), got...) }
	distinct := func() int {
		seen := map[string]bool{}
		for _, e := range delivered() {
			seen[e.ID] = true
		}
		return len(seen)
	}
	type replica struct {
		st     *store.DB
		leader *store.Leader
		runner *Runner
	}
	start := func(name string) *replica {
		st, err := store.Open(t.Context(), u, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		l := st.Leader("audit-sink:siem", 50*time.Millisecond)
		r := Start(Config{Name: "siem", Sink: &tally{name: name, mu: &mu, got: &got, by: by}, Filter: Filter{Records: true, Admin: true},
			Leader: l, Batch: 5, Interval: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, st)
		rep := &replica{st, l, r}
		t.Cleanup(func() { rep.runner.Close(); rep.leader.Close() })
		return rep
	}
	a, b := start("a"), start("b")
	addRecords(t, a.st, 0, 30)
	addActions(t, b.st, "policy.save", "auth.refused")
	waitFor(t, "the first 32 events", func() bool { return distinct() == 32 })
	first, second := a, b
	if count("b") > 0 {
		first, second = b, a
	}
	if count("a") > 0 && count("b") > 0 {
		t.Fatalf("both replicas delivered: a %d, b %d", count("a"), count("b"))
	}
	firstName := map[*replica]string{a: "a", b: "b"}[first]
	first.runner.Close()
	first.leader.Close()
	addRecords(t, second.st, 30, 20)
	waitFor(t, "the other replica to take over and deliver the rest", func() bool { return distinct() == 52 })
	if count(map[*replica]string{a: "a", b: "b"}[second]) == 0 {
		t.Fatal("the second replica delivered nothing")
	}
	checkOrder(t, delivered())
	t.Logf("replica %s delivered %d, then the other %d; %d events in all for 52", firstName, count(firstName),
		len(delivered())-count(firstName), len(delivered()))
}
