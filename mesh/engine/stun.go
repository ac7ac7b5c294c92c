package engine

import (
	"net/netip"
	"time"

	"tailscale.com/net/stun"
)

// stunEvery is how often the bind asks the STUN server for its public
// address, while traffic flows: NAT mappings change when a laptop moves
// between networks.
const stunEvery = 20 * time.Second

// setSTUN makes server the STUN server the bind asks for its public
// address; an invalid server stops asking.
// A new server is asked at once.
func (b *pathBind) setSTUN(server netip.AddrPort) {
	b.mu.Lock()
	var req []outPing
	if b.mu.stun.server != server {
		b.mu.stun.server, b.mu.stun.asked, b.mu.stun.public = server, time.Time{}, netip.AddrPort{}
		req = b.stunDueLocked(time.Now())
	}
	b.mu.Unlock()
	b.sendPings(req)
}

// stunDueLocked returns a STUN request to send now, if one is due.
func (b *pathBind) stunDueLocked(now time.Time) []outPing {
	s := &b.mu.stun
	if !s.server.IsValid() || now.Sub(s.asked) < stunEvery {
		return nil
	}
	ep := b.endpointLocked(s.server)
	if ep == nil {
		return nil
	}
	s.asked, s.tx = now, stun.NewTxID()
	return []outPing{{to: ep, msg: stun.Request(s.tx)}}
}

// handleSTUN takes a STUN response to the last request.
func (b *pathBind) handleSTUN(msg []byte) {
	tx, addr, err := stun.ParseResponse(msg)
	if err != nil {
		return
	}
	pub := netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	b.mu.Lock()
	changed := tx == b.mu.stun.tx && addr.IsValid() && pub != b.mu.stun.public
	if changed {
		b.mu.stun.public = pub
	}
	b.mu.Unlock()
	if f := b.onPublic.Load(); changed && f != nil {
		(*f)(pub)
	}
}

// publicEndpoint is the address the STUN server last saw the WireGuard
// socket at; invalid before an answer.
func (b *pathBind) publicEndpoint() netip.AddrPort {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.stun.public
}
