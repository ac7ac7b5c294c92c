package engine

import (
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
)

// Unanswered connections to one peer renew its session once per
// rehandshakeGap; another peer is renewed independently; old notes go.
func TestRenewOncePerGap(t *testing.T) {
	var e Engine
	a, _ := key.NewPrivate()
	b, _ := key.NewPrivate()
	t0 := time.Now()
	steps := []struct {
		k    key.Public
		at   time.Duration
		want bool
	}{
		{a.Public(), 0, true},
		{a.Public(), 38 * time.Millisecond, false}, // a second worker's dial, as in the rotation test
		{b.Public(), 40 * time.Millisecond, true},
		{a.Public(), rehandshakeGap - time.Millisecond, false},
		{a.Public(), rehandshakeGap, true},
		{b.Public(), rehandshakeGap + 39*time.Millisecond, false},
		{b.Public(), 2*rehandshakeGap + 40*time.Millisecond, true},
	}
	for i, s := range steps {
		if got := e.renewDueLocked(s.k, t0.Add(s.at)); got != s.want {
			t.Fatalf("step %d (%s at %v): renew %v, want %v", i, s.k.Short(), s.at, got, s.want)
		}
	}
	if len(e.mu.renewed) != 1 {
		t.Fatalf("%d notes kept, want only b's latest", len(e.mu.renewed))
	}
}
