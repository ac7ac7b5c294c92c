package coordinator

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// Who is asking: the one place that turns a request into its client's
// address. Rate limits, connection caps and the access log all use it.
//
// Without trusted proxies the client is the peer of the TCP connection
// (RemoteAddr); a forwarding header is never read. When the peer is a
// trusted proxy (Config.TrustedProxies), the client is the rightmost hop
// of X-Forwarded-For that is not itself a trusted proxy: each proxy
// appends the address it received the request from, so every hop to the
// right of that one was written by a proxy we trust, and everything to
// its left was written by the client and is ignored. RFC 7239's
// Forwarded header is read the same way, but only when the request has no
// X-Forwarded-For: a proxy that appends to one header passes the other
// through as the client sent it.

// ClientAddr returns the address of the client that sent r, as the
// coordinator's trusted proxies report it (see Config.TrustedProxies).
// It returns the zero Addr when RemoteAddr is not an IP address (a test
// handler called without a connection).
func (s *Server) ClientAddr(r *http.Request) netip.Addr {
	return ClientAddr(r, s.cfg.TrustedProxies)
}

// ClientAddr returns the address of the client that sent r when the
// proxies in trusted are believed: RemoteAddr when it is not one of them,
// otherwise the rightmost forwarded hop that is not. IPv4-mapped IPv6
// addresses come back as IPv4.
func ClientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := remoteAddr(r)
	if !isTrusted(peer, trusted) {
		return peer
	}
	hops := forwardedHops(r.Header)
	client := peer
	for _, h := range slices.Backward(hops) {
		a, ok := parseHop(h)
		if !ok {
			return client // garbage from the client's side: the last hop we trust
		}
		client = a
		if !isTrusted(a, trusted) {
			return a
		}
	}
	return client // every hop is a trusted proxy: the leftmost
}

// clientKey is the rate-limit key of a client address: IPv4 addresses
// alone, IPv6 addresses by their /64 (one subscriber usually holds a whole
// /64, and picks any address in it at will).
func clientKey(a netip.Addr) string {
	if !a.IsValid() {
		return "unknown"
	}
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// clientKeyOf is the rate-limit key of r's client.
func (s *Server) clientKeyOf(r *http.Request) string { return clientKey(s.ClientAddr(r)) }

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// forwardedHops returns the hops of X-Forwarded-For, or of Forwarded's
// for= parameters when there is no X-Forwarded-For, left to right, over
// every line of the header.
func forwardedHops(h http.Header) []string {
	var hops []string
	if xff := h.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, line := range xff {
			for hop := range strings.SplitSeq(line, ",") {
				hops = append(hops, strings.TrimSpace(hop))
			}
		}
		return hops
	}
	for _, line := range h.Values("Forwarded") {
		for elem := range strings.SplitSeq(line, ",") {
			hops = append(hops, forwardedFor(elem))
		}
	}
	return hops
}

// forwardedFor returns the for= value of one Forwarded element, unquoted,
// or "" when it has none.
func forwardedFor(elem string) string {
	for pair := range strings.SplitSeq(elem, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(k, "for") {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

// parseHop reads one forwarded hop: an address, optionally with a port
// ("192.0.2.1:4711", "[2001:db8::1]:4711") or in brackets.
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}
