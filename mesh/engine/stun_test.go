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
// socket itself.
func TestSTUNDiscovery(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go relay.ServeSTUN(pc)
	m := newMember(t, 1)
	m.eng.SetSTUN(pc.LocalAddr().(*net.UDPAddr).AddrPort())
	want := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), m.eng.Port())
	for deadline := time.Now().Add(10 * time.Second); m.eng.PublicEndpoint() != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("public endpoint %v, want %v", m.eng.PublicEndpoint(), want)
		}
	}
}
