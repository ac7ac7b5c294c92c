package member

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// LocalEndpoints are this host's addresses (not loopback, link-local or
// the mesh's own) with port: where peers on the same networks reach its
// WireGuard socket.
func LocalEndpoints(port uint16) []netip.AddrPort {
	var out []netip.AddrPort
	ifaces, _ := net.InterfaceAddrs()
	for _, a := range ifaces {
		p, err := netip.ParsePrefix(a.String())
		if err != nil || p.Addr().IsLoopback() || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if wire.IPv4Range.Contains(p.Addr()) || wire.IPv6Range.Contains(p.Addr()) {
			continue // our own mesh addresses
		}
		out = append(out, netip.AddrPortFrom(p.Addr().Unmap(), port))
		if len(out) == wire.MaxEndpoints {
			break
		}
	}
	return out
}

// endpoints is what a device reports: its extra endpoints, the public
// address STUN saw, then its interface addresses.
func (m *Member) endpoints() []netip.AddrPort {
	out := slices.Clone(m.cfg.ExtraEndpoints)
	if pub := m.eng.PublicEndpoint(); pub.IsValid() && !slices.Contains(out, pub) {
		out = append(out, pub)
	}
	for _, ep := range LocalEndpoints(m.eng.Port()) {
		if !slices.Contains(out, ep) {
			out = append(out, ep)
		}
	}
	return out[:min(len(out), wire.MaxEndpoints)]
}

// reportEvery is how often a device checks whether its endpoints changed
// (a new network, a new NAT mapping) and reports them when they did.
const reportEvery = 15 * time.Second

// publicChanged asks reportEndpoints to report now: STUN saw the socket
// at a new public address, which a peer behind another NAT needs for
// hole punching at once, not at the next check.
func (m *Member) publicChanged() {
	select {
	case m.newPublic <- struct{}{}:
	default:
	}
}

// reportEndpoints reports the device's endpoints to ctl whenever they
// change (checked every reportEvery, and at once when STUN sees a new
// public address), until ctx ends, so that nodes can reach it directly (and the
// two can punch through NATs) instead of through the relay.
func (m *Member) reportEndpoints(ctx context.Context, ctl *control.Client) {
	var last []netip.AddrPort
	t := time.NewTicker(reportEvery)
	defer t.Stop()
	select { // the first netmap, or the first check
	case <-ctx.Done():
		return
	case <-m.ready:
	case <-t.C:
	}
	for {
		if eps := m.endpoints(); !slices.Equal(eps, last) {
			rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := ctl.ReportEndpoints(rctx, eps)
			cancel()
			if err != nil {
				m.log.Debug("endpoints not reported; next check retries", "err", err)
			} else {
				last = eps
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.newPublic:
		}
	}
}
