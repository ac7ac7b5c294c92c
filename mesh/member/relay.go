package member

import (
	"context"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/mesh/wire"
)

// useRelay points the engine at the netmap's first relay, or at the
// coordinator's own (its URL + relay.Path) when the netmap names none.
// The coordinator's certificate pin applies to a relay on the
// coordinator's host; a relay elsewhere is verified against the system
// roots. The relay is reached through the same HTTP proxy as the
// coordinator (HTTPS_PROXY).
func (m *Member) useRelay(nm *wire.NetMap, ctl *control.Client) {
	target := ctl.URL(relay.Path)
	if len(nm.Relays) > 0 {
		target = nm.Relays[0].URL
	}
	tlsConf := ctl.TLSConfig()
	if !sameHost(target, ctl.URL("")) {
		tlsConf = nil
	}
	if err := m.eng.SetRelay(target, tlsConf, ctl.Proxy(target)); err != nil {
		m.log.Warn("relay not usable; peers without a direct path are unreachable", "relay", target, "err", err)
	}
	if m.stunFor != ctl.URL("") {
		m.stunFor = ctl.URL("")
		if srv, ok := STUNServer(m.stunFor); ok {
			m.eng.SetSTUN(srv)
		}
	}
}

// STUNServer is the coordinator's STUN responder: its host (resolved,
// the first address) on relay.DefaultSTUNPort.
func STUNServer(coordinatorURL string) (netip.AddrPort, bool) {
	u, err := url.Parse(coordinatorURL)
	if err != nil || u.Hostname() == "" {
		return netip.AddrPort{}, false
	}
	addr, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		addrs, lerr := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
		if lerr != nil || len(addrs) == 0 {
			return netip.AddrPort{}, false
		}
		addr = addrs[0]
	}
	if addr.IsLoopback() {
		return netip.AddrPort{}, false // a coordinator on this host: nothing to learn
	}
	return netip.AddrPortFrom(addr.Unmap(), relay.DefaultSTUNPort), true
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Host == ub.Host
}
