package relay

import (
	"errors"
	"net"
	"net/netip"

	"tailscale.com/net/stun"
)

// DefaultSTUNPort is the UDP port the coordinator answers STUN on.
const DefaultSTUNPort = 3478

// ServeSTUN answers STUN binding requests on pc with the address each
// came from, until pc is closed: a member behind a NAT learns the public
// address and port its WireGuard socket appears from, and advertises it.
// The parsing and answers are Tailscale's (tailscale.com/net/stun).
func ServeSTUN(pc net.PacketConn) error {
	buf := make([]byte, 2048)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		tx, err := stun.ParseBindingRequest(buf[:n])
		if err != nil {
			continue
		}
		src := ua.AddrPort()
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		pc.WriteTo(stun.Response(tx, src), from)
	}
}
