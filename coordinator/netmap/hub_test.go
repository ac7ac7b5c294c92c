package netmap

import (
	"testing"
	"time"
)

func testFrame(peers ...string) *frame {
	f := &frame{self: fragment{json: []byte(`{}`)}}
	for _, p := range peers {
		f.peers = append(f.peers, fragment{json: []byte(`"` + p + `"`), device: p})
	}
	f.seal()
	return f
}

// A recompute whose snapshot predates a drop must not bring the dropped
// device back, neither as a member nor as anyone's peer.
func TestHubDropSurvivesStaleRecompute(t *testing.T) {
	h := newHub(time.Now())
	before := time.Now()
	h.update(map[string]*frame{"a": testFrame("b", "n"), "b": testFrame("a", "n"), "n": testFrame("a", "b")}, before, before)
	woken := h.drop("b", time.Now())
	if len(woken) != 3 || h.current("b") != nil {
		t.Fatalf("drop woke %v; b still current: %v", woken, h.current("b") != nil)
	}
	// The stale recompute (snapshot before the drop) still lists b.
	h.update(map[string]*frame{"a": testFrame("b", "n"), "b": testFrame("a", "n"), "n": testFrame("a", "b")}, before, time.Now())
	if h.current("b") != nil {
		t.Fatal("a stale recompute brought the dropped device back")
	}
	for _, id := range []string{"a", "n"} {
		for _, p := range h.current(id).frame.peers {
			if p.device == "b" {
				t.Fatalf("%s lists the dropped device again", id)
			}
		}
	}
	// A recompute from after the drop is taken as it is.
	h.update(map[string]*frame{"a": testFrame("n"), "n": testFrame("a")}, time.Now(), time.Now())
	if len(h.current("n").frame.peers) != 1 {
		t.Fatal("a fresh recompute was altered")
	}
}
