package coordinator

import (
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// TestDrainEndsNetmapStreams: Drain ends open netmap streams cleanly (the
// client sees the coordinator close the stream, not a broken
// connection), and a stream opened while draining ends at once.
func TestDrainEndsNetmapStreams(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	d := tc.signIn(t, tc.addPerson(t, "ann@example.com", false), "laptop")
	w := d.watch(t)
	w.next(t, "the first netmap", func(*wire.NetMap) bool { return true })
	tc.Drain()
	ended := func(w *watcher) {
		t.Helper()
		select {
		case err := <-w.errc:
			if err == nil || !strings.Contains(err.Error(), "coordinator closed the netmap stream") {
				t.Errorf("stream ended with %v, want the coordinator closing it cleanly", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the netmap stream is still open 5s after Drain")
		}
	}
	ended(w)
	ended(d.watch(t))
	if code := getLogged(t, tc.URL+"/healthz", "", "").StatusCode; code != 200 {
		t.Errorf("other requests while draining: %d, want 200", code)
	}
}
