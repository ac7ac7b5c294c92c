// Package enginetest makes userspace WireGuard engines for tests of what
// runs over the mesh (the router, the guard): each Member is a netstack
// engine on a loopback UDP port with numbered mesh addresses, ready to be
// put into the others' netmaps.
package enginetest

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// Member is one engine of a test mesh. It closes when the test ends.
type Member struct {
	Eng   *engine.Engine
	Addrs []netip.Addr // 100.64.0.n and fd7a:6d6f:6174::n
	priv  key.Private
}

// New starts member n (1–254) on the userspace network stack.
func New(t testing.TB, n int) *Member {
	t.Helper()
	priv, err := key.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Config{PrivateKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return &Member{Eng: e, priv: priv, Addrs: []netip.Addr{
		netip.AddrFrom4([4]byte{100, 64, 0, byte(n)}),
		netip.MustParseAddr(fmt.Sprintf("fd7a:6d6f:6174::%x", n)),
	}}
}

// Peer is m as others' netmaps list it, reached over loopback, as id.
func (m *Member) Peer(id wire.Identity) wire.Peer {
	return wire.Peer{
		Key: m.Eng.PublicKey(), Addresses: m.Addrs, Identity: id,
		Endpoints: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), m.Eng.Port())},
	}
}

// NetMap is m's own netmap with peers.
func (m *Member) NetMap(seq uint64, id wire.Identity, peers ...wire.Peer) *wire.NetMap {
	return &wire.NetMap{Version: wire.Version, Seq: seq, Peers: peers,
		Self: wire.Self{Key: m.Eng.PublicKey(), Addresses: m.Addrs, Identity: id}}
}

// Client is an HTTP client that reaches the mesh through m's engine.
func (m *Member) Client() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: m.Eng.Dial}}
}

// Restart closes m's engine and starts a new one with the same key and
// UDP port, configured with nm: a member that restarted and forgot its
// WireGuard sessions, as a process restart does.
func (m *Member) Restart(t testing.TB, nm *wire.NetMap) {
	t.Helper()
	port := m.Eng.Port()
	m.Eng.Close()
	e, err := engine.New(engine.Config{PrivateKey: m.priv, ListenPort: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	if err := e.Reconfig(nm); err != nil {
		t.Fatal(err)
	}
	m.Eng = e
}
