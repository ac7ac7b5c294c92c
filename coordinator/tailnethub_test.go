package coordinator

import "testing"

// A node's third tailnet stream ends its oldest; other nodes' streams and
// wakes are untouched.
func TestTailnetHubStreams(t *testing.T) {
	var h tailnetHub
	a1, _ := h.subscribe("n_a")
	a2, _ := h.subscribe("n_a")
	b, doneB := h.subscribe("n_b")
	a3, _ := h.subscribe("n_a")
	closed := func(s *tailnetSub) bool {
		select {
		case <-s.ended:
			return true
		default:
			return false
		}
	}
	if !closed(a1) || closed(a2) || closed(a3) || closed(b) {
		t.Fatalf("ended: a1 %v a2 %v a3 %v b %v; want a1 only", closed(a1), closed(a2), closed(a3), closed(b))
	}
	doneB()
	h.updated(nil)
	for name, s := range map[string]*tailnetSub{"a2": a2, "a3": a3} {
		select {
		case <-s.wake:
		default:
			t.Errorf("%s not woken by a recompute", name)
		}
	}
	select {
	case <-b.wake:
		t.Error("an unsubscribed stream was woken")
	default:
	}
}
