package coordinator

import (
	"net"
	"net/netip"
)

// LimitListener caps the connections ln accepts from one client address
// (IPv6: one /64) at Config.MaxConnsPerClient: a connection beyond the
// cap is closed as soon as it is accepted, before TLS or HTTP cost
// anything. Trusted proxies are not capped (every client behind them
// shares their connections; the per-request cap holds there). Serve the
// coordinator on the returned listener.
func (s *Server) LimitListener(ln net.Listener) net.Listener {
	if s.cfg.MaxConnsPerClient < 0 {
		return ln
	}
	return &limitListener{Listener: ln, held: newCounter(s.cfg.MaxConnsPerClient), trusted: s.cfg.TrustedProxies}
}

type limitListener struct {
	net.Listener
	held    *counter
	trusted []netip.Prefix
}

// Accept returns the next connection within the cap, closing those over it.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		a := peerAddr(c)
		if isTrusted(a, l.trusted) {
			return c, nil
		}
		release := l.held.acquire(clientKey(a))
		if release == nil {
			c.Close()
			continue
		}
		return &heldConn{Conn: c, release: release}, nil
	}
}

func peerAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().WithZone("")
	}
	return netip.Addr{}
}

// heldConn gives its place back when closed (release is idempotent).
type heldConn struct {
	net.Conn
	release func()
}

func (c *heldConn) Close() error {
	err := c.Conn.Close()
	c.release()
	return err
}
