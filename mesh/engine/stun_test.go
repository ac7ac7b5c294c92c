package engine

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/relay"
)

// The engine learns the address its WireGuard socket is seen at from a
// STUN server (the coordinator's responder), through the WireGuard
// socket itself, and says so at once (OnPublicEndpoint).
func TestSTUNDiscovery(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go relay.ServeSTUN(pc)
	m := newMember(t, 1)
	told := make(chan netip.AddrPort, 1)
	m.eng.OnPublicEndpoint(func(ap netip.AddrPort) { told <- ap })
	m.eng.SetSTUN(pc.LocalAddr().(*net.UDPAddr).AddrPort())
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), m.eng.Port())
	select {
	case got := <-told:
		if got != want || m.eng.PublicEndpoint() != want {
			t.Fatalf("told %v, public endpoint %v; want %v", got, m.eng.PublicEndpoint(), want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("never told of the public endpoint; it is %v, want %v", m.eng.PublicEndpoint(), want)
	}
}
