package member

import (
	"net/netip"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// A peer's path is reported as the engine says only while a session is
// up; a peer never or long not heard from is "none".
func TestPeerPath(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	k := mustPublic(t)
	for _, c := range []struct {
		name string
		in   engine.PeerStatus
		want wire.PeerPath
	}{
		{"direct", engine.PeerStatus{Path: engine.PathDirect, Endpoint: "203.0.113.5:41641", RTT: 1500 * time.Microsecond, LastHandshake: now.Add(-time.Minute)},
			wire.PeerPath{Path: wire.PathDirect, Endpoint: netip.MustParseAddrPort("203.0.113.5:41641"), RTTMillis: 1.5, LastHandshake: now.Add(-time.Minute)}},
		{"relayed", engine.PeerStatus{Path: engine.PathRelay, Relay: "https://moat.example.com/derp", LastHandshake: now.Add(-time.Minute)},
			wire.PeerPath{Path: wire.PathRelay, Relay: "https://moat.example.com/derp", LastHandshake: now.Add(-time.Minute)}},
		{"never in contact", engine.PeerStatus{Path: engine.PathRelay, Relay: "https://moat.example.com/derp"},
			wire.PeerPath{Path: wire.PathNone}},
		{"session over", engine.PeerStatus{Path: engine.PathDirect, Endpoint: "203.0.113.5:41641", LastHandshake: now.Add(-sessionLife - time.Second)},
			wire.PeerPath{Path: wire.PathNone, LastHandshake: now.Add(-sessionLife - time.Second)}},
		{"unproven", engine.PeerStatus{Path: engine.PathUnproven, Endpoint: "203.0.113.5:41641", LastHandshake: now.Add(-time.Minute)},
			wire.PeerPath{Path: wire.PathNone, LastHandshake: now.Add(-time.Minute)}},
	} {
		c.in.Key, c.want.Peer = k, k
		got := peerPath(c.in, now)
		if got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
		r := wire.PathReport{Paths: []wire.PeerPath{got}}
		if err := r.Validate(); err != nil {
			t.Errorf("%s: the report is refused: %v", c.name, err)
		}
	}
}

// Reports differing only in handshake times or round trips are the same:
// they are not sent again before pathsRefresh.
func TestSamePaths(t *testing.T) {
	k := mustPublic(t)
	a := wire.PathReport{Paths: []wire.PeerPath{{Peer: k, Path: wire.PathDirect, Endpoint: netip.MustParseAddrPort("192.0.2.1:1"), RTTMillis: 1}}}
	b := wire.PathReport{Paths: []wire.PeerPath{{Peer: k, Path: wire.PathDirect, Endpoint: netip.MustParseAddrPort("192.0.2.1:1"), RTTMillis: 2, LastHandshake: time.Now()}}}
	if !samePaths(a, b) {
		t.Error("a new handshake counts as a path change")
	}
	b.Paths[0].Path, b.Paths[0].Endpoint = wire.PathRelay, netip.AddrPort{}
	if samePaths(a, b) {
		t.Error("direct → relay is not a change")
	}
}

func mustPublic(t *testing.T) key.Public {
	t.Helper()
	k, err := key.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}
