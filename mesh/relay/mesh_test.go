package relay

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"testing"

	"github.com/moatmesh/moat/internal/testlog"

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
	s3, url3, _ := serveRelay(t, ServerConfig{Admit: admit}) // a random key
	for _, m := range []struct {
		s, peer *Server
		url     string
	}{{s1, s2, url2}, {s2, s1, url1}, {s1, s3, url3}} {
		stop, err := m.s.MeshWith(m.url, m.peer.PublicKey(), conf) // httptest's servers share one certificate
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

// A relay meshing over plain HTTP (replicas behind a TLS proxy) pins the
// other relay's key: a man in the middle answering with its own key,
// even one holding the mesh key, is refused before this relay sends its
// mesh key, and never joins; the relay with the pinned key meshes.
func TestMeshPinsTheRelayKey(t *testing.T) {
	a, b := newKey(t), newKey(t)
	admit := func(_ context.Context, k key.Public) bool { return true }
	var meshKey [32]byte
	rand.Read(meshKey[:])
	var logs testlog.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s1, url1 := servePlainRelay(t, ServerConfig{Admit: admit, MeshKey: meshKey, Logger: log})
	s2, url2 := servePlainRelay(t, ServerConfig{Admit: admit, MeshKey: meshKey})
	mitm, mitmURL := servePlainRelay(t, ServerConfig{Admit: admit, MeshKey: meshKey})

	stop, err := s1.MeshWith(mitmURL, s2.PublicKey(), nil) // s2's key announced, the MITM's address
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	waitFor(t, "the refusal", func() bool { return strings.Contains(logs.String(), errRelayKey.Error()) })
	if mitm.derp.IsClientConnectedForTest(s1.derp.PublicKey()) {
		t.Fatal("the relay joined a man in the middle")
	}
	if _, err := s1.MeshWith(url2, key.Public{}, nil); err == nil {
		t.Fatal("meshed with no key to pin")
	}

	for _, m := range []struct {
		s, peer *Server
		url     string
	}{{s1, s2, url2}, {s2, s1, url1}} {
		stop, err := m.s.MeshWith(m.url, m.peer.PublicKey(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	ca, cb := client(t, url1, nil, a), client(t, url2, nil, b)
	waitFor(t, "both connected", func() bool { return ca.Connected() && cb.Connected() })
	sendUntil(t, ca, cb, b.Public(), "pinned and meshed")
}
