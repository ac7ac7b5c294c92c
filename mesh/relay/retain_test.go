package relay

import (
	"context"
	"sync"
	"testing"

	"github.com/moatmesh/moat/mesh/key"
)

// Retain closes the connection of a member no longer admitted, and it
// stays refused; a member that keep does not know but Admit still admits
// (enrolled after the snapshot keep came from) keeps its connection.
func TestRetainClosesRevokedMembers(t *testing.T) {
	a, b, c := newKey(t), newKey(t), newKey(t)
	var mu sync.Mutex
	admitted := map[key.Public]bool{a.Public(): true, b.Public(): true, c.Public(): true}
	s, url, conf := serveRelay(t, ServerConfig{Admit: func(_ context.Context, k key.Public) bool {
		mu.Lock()
		defer mu.Unlock()
		return admitted[k]
	}})
	ca, cb, cc := client(t, url, conf, a), client(t, url, conf, b), client(t, url, conf, c)
	waitFor(t, "all connected", func() bool { return ca.Connected() && cb.Connected() && cc.Connected() })
	waitFor(t, "the relay to see all three", func() bool { return len(s.watch.connected()) == 3 })

	mu.Lock()
	delete(admitted, a.Public()) // a is revoked
	mu.Unlock()
	s.Retain(context.Background(), func(k key.Public) bool { return k.Equal(c.Public()) })
	waitFor(t, "a cut off and refused", func() bool { return !ca.Connected() && ca.Err() != nil })
	if !cb.Connected() || !cc.Connected() {
		t.Fatal("Retain closed a member still admitted")
	}
	sendUntil(t, cb, cc, c.Public(), "still here")
	if err := ca.Send(b.Public(), []byte("x")); err != ErrNotConnected {
		t.Fatalf("the revoked member's Send = %v, want ErrNotConnected", err)
	}
}
