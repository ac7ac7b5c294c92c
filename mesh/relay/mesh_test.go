package relay

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/moatmesh/moat/mesh/key"
)

// Two relays holding the same mesh key forward to each other: a member
// attached to one reaches a member attached to the other, both ways. A
// relay with another key is not a mesh peer: nothing crosses to it.
func TestMeshedRelaysForward(t *testing.T) {
	a, b, c := newKey(t), newKey(t), newKey(t)
	admit := func(_ context.Context, k key.Public) bool {
		return k.Equal(a.Public()) || k.Equal(b.Public()) || k.Equal(c.Public())
	}
	var meshKey [32]byte
	rand.Read(meshKey[:])
	s1, url1, conf := serveRelay(t, ServerConfig{Admit: admit, MeshKey: meshKey})
	s2, url2, _ := serveRelay(t, ServerConfig{Admit: admit, MeshKey: meshKey})
	_, url3, _ := serveRelay(t, ServerConfig{Admit: admit}) // a random key
	for _, m := range []struct {
		s   *Server
		url string
	}{{s1, url2}, {s2, url1}, {s1, url3}} {
		stop, err := m.s.MeshWith(m.url, conf) // httptest's servers share one certificate
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	ca, cb, cc := client(t, url1, conf, a), client(t, url2, conf, b), client(t, url3, conf, c)
	waitFor(t, "all connected", func() bool { return ca.Connected() && cb.Connected() && cc.Connected() })
	sendUntil(t, ca, cb, b.Public(), "from relay 1")
	sendUntil(t, cb, ca, a.Public(), "from relay 2")

	// Relay 3 does not hold the mesh key: relay 1 cannot watch it, so a's
	// packets for c go nowhere.
	for range 20 {
		if err := ca.Send(c.Public(), []byte("lost")); err != nil {
			t.Fatal(err)
		}
	}
	sendUntil(t, ca, cb, b.Public(), "after the lost ones")
	select {
	case p := <-cc.Recv():
		t.Fatalf("c, on a relay outside the mesh, got %q", p.Data)
	default:
	}
}
