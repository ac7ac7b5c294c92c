package netmap

import (
	"slices"
	"testing"
	"time"
)

func testFrame(peers ...string) *frame {
	f := &frame{self: &fragment{json: []byte(`{}`)}}
	for _, p := range peers {
		f.peers = append(f.peers, &fragment{json: []byte(`"` + p + `"`), device: p})
	}
	f.seal()
	return f
}

// updateAll installs frames, all devices live.
func updateAll(h *hub, frames map[string]*frame, snapAt, now time.Time) []string {
	live := map[string]bool{}
	for id := range frames {
		live[id] = true
	}
	woken, _ := h.update(frames, live, snapAt, now)
	return woken
}

// A recompute whose snapshot predates a drop must not bring the dropped
// device back, neither as a member nor as anyone's peer.
func TestHubDropSurvivesStaleRecompute(t *testing.T) {
	h := newHub(time.Now())
	before := time.Now()
	updateAll(h, map[string]*frame{"a": testFrame("b", "n"), "b": testFrame("a", "n"), "n": testFrame("a", "b")}, before, before)
	woken := h.drop("b", time.Now())
	if len(woken) != 3 || h.current("b") != nil {
		t.Fatalf("drop woke %v; b still current: %v", woken, h.current("b") != nil)
	}
	// The stale recompute (snapshot before the drop) still lists b.
	updateAll(h, map[string]*frame{"a": testFrame("b", "n"), "b": testFrame("a", "n"), "n": testFrame("a", "b")}, before, time.Now())
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
	updateAll(h, map[string]*frame{"a": testFrame("n"), "n": testFrame("a")}, time.Now(), time.Now())
	if len(h.current("n").frame.peers) != 1 {
		t.Fatal("a fresh recompute was altered")
	}
}

// Only the devices streaming here get netmaps; a stream that began after
// the snapshot is reported missing, and one of a device no longer live
// ends even before it had a netmap.
func TestHubShare(t *testing.T) {
	h := newHub(time.Now())
	subA, _ := h.subscribe("a")
	subGone, endGone := h.subscribe("gone")
	live := map[string]bool{"a": true, "b": true, "late": true}
	woken, missing := h.update(map[string]*frame{"a": testFrame("b")}, live, time.Now(), time.Now())
	if len(woken) != 2 || missing || h.current("b") != nil {
		t.Fatalf("woke %v, missing %v, b has a netmap: %v", woken, missing, h.current("b") != nil)
	}
	select {
	case <-subA.wake:
	default:
		t.Fatal("a's stream was not woken with its netmap")
	}
	select {
	case <-subGone.wake:
	default:
		t.Fatal("the stream of a device no longer live was not woken to end")
	}
	endGone() // as Serve does when woken without a netmap
	h.subscribe("late")
	if _, missing := h.update(map[string]*frame{"a": testFrame("b")}, live, time.Now(), time.Now()); !missing {
		t.Fatal("a live device streaming here without a netmap is not reported missing")
	}
	if woken, _ := h.update(map[string]*frame{"late": testFrame()}, live, time.Now(), time.Now()); len(woken) != 1 || h.current("a") != nil {
		t.Fatalf("a's netmap, no longer computed, was not forgotten quietly: woke %v", woken)
	}
}

// TestHubKeepsStreamsNewerThanSnapshot: a device that joined after a
// recompute read its snapshot is absent from it; its stream must wait for
// the next recompute, not end (a node that has just enrolled saw "the
// coordinator closed the netmap stream"). A device absent from a snapshot
// read after its stream began has left: its stream ends.
func TestHubKeepsStreamsNewerThanSnapshot(t *testing.T) {
	h := newHub(time.Now())
	snapAt := time.Now()
	for !time.Now().After(snapAt) { // the subscription is strictly newer
	}
	sub, _ := h.subscribe("joined")
	woken, missing := h.update(map[string]*frame{}, map[string]bool{}, snapAt, time.Now())
	if len(woken) != 0 || !missing {
		t.Fatalf("a stream newer than the snapshot was woken %v (missing %v)", woken, missing)
	}
	select {
	case <-sub.wake:
		t.Fatal("the stream of a device that joined after the snapshot was woken to end")
	default:
	}
	if woken, _ := h.update(map[string]*frame{}, map[string]bool{}, time.Now(), time.Now()); len(woken) != 1 {
		t.Fatalf("a device absent from a newer snapshot kept its stream (woke %v)", woken)
	}
	// Dropped (revoked) after the old snapshot: it ends at once.
	h2 := newHub(time.Now())
	old := time.Now()
	for !time.Now().After(old) {
	}
	h2.subscribe("revoked")
	h2.drop("revoked", time.Now())
	if woken, _ := h2.update(map[string]*frame{}, map[string]bool{}, old, time.Now()); len(woken) != 1 {
		t.Fatalf("a device dropped after the snapshot kept its stream (woke %v)", woken)
	}
}

// A drop rewrites the netmaps that list the device, whether this replica
// holds the device's own netmap (then only its peers' are looked at) or
// not (its stream is on another replica: every netmap is looked at).
func TestHubDropReachesPeers(t *testing.T) {
	for _, holdsVictim := range []bool{true, false} {
		h := newHub(time.Now())
		frames := map[string]*frame{"n1": testFrame("a", "b"), "n2": testFrame("b"), "c": testFrame("n2")}
		if holdsVictim {
			frames["a"] = testFrame("n1")
		}
		updateAll(h, frames, time.Now(), time.Now())
		woken := h.drop("a", time.Now())
		slices.Sort(woken)
		want := []string{"n1"}
		if holdsVictim {
			want = []string{"a", "n1"}
		}
		if !slices.Equal(woken, want) {
			t.Errorf("holding the victim's netmap %v: drop woke %v, want %v", holdsVictim, woken, want)
		}
		if ps := h.current("n1").frame.peers; len(ps) != 1 || ps[0].device != "b" {
			t.Errorf("n1 still lists %v", ps)
		}
		if h.current("n2").frame != frames["n2"] {
			t.Error("a netmap that did not list the victim was rewritten")
		}
	}
}
