package screen

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestTrackerBurst(t *testing.T) {
	clk := &fakeClock{time.Unix(1700000000, 0)}
	var got []AbuseEvent
	tr := NewTracker(AbuseConfig{Now: clk.now, Throttle: time.Minute, OnEvent: func(e AbuseEvent) { got = append(got, e) }})
	for m := 0; m < 10; m++ { // a usual rate: 5 a minute
		for i := 0; i < 5; i++ {
			tr.Observe(Usage{Identity: "alice", Prompt: fmt.Sprintf("question %c about topic %c", 'a'+i, 'k'+m)})
			clk.t = clk.t.Add(12 * time.Second)
		}
	}
	if len(got) != 0 {
		t.Fatalf("usual rate raised %v", got)
	}
	var d AbuseDecision
	for i := 0; i < 40; i++ {
		d = tr.Observe(Usage{Identity: "alice", Prompt: fmt.Sprintf("unrelated text number %c%c", 'a'+i%26, 'a'+i/26)})
		clk.t = clk.t.Add(time.Second)
	}
	if len(got) == 0 || got[0].Kind != AbuseBurst || !d.Throttle {
		t.Fatalf("burst: events %v, decision %+v", got, d)
	}
}

func TestTrackerNearDuplicatesAndLogprobs(t *testing.T) {
	clk := &fakeClock{time.Unix(1700000000, 0)}
	tr := NewTracker(AbuseConfig{Now: clk.now})
	kinds := map[AbuseKind]bool{}
	for i := 0; i < 60; i++ {
		d := tr.Observe(Usage{Identity: "bob", Prompt: fmt.Sprintf("Translate sentence %d of the manual into French: The pump runs at %d rpm.", i, 100+i), TopLogprobs: 5})
		for _, e := range d.Events {
			kinds[e.Kind] = true
		}
		clk.t = clk.t.Add(500 * time.Millisecond)
	}
	if !kinds[AbuseNearDuplicates] || !kinds[AbuseLogprobs] {
		t.Fatalf("events: %v", kinds)
	}
	if a, b := simHash("How do I bake bread at home?"), simHash("Explain the TCP three-way handshake."); hamming(a, b) <= 4 {
		t.Fatalf("unrelated prompts %d bits apart", hamming(a, b))
	}
}

func TestTrackerBoundedAndConcurrent(t *testing.T) {
	tr := NewTracker(AbuseConfig{MaxIdentities: 100})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				tr.Observe(Usage{Identity: fmt.Sprintf("id-%d-%d", g, i), Prompt: "hi"})
			}
		}()
	}
	wg.Wait()
	if n := tr.Len(); n > 100 {
		t.Fatalf("tracking %d identities, cap 100", n)
	}
}
