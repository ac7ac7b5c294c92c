package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
)

// startRelay serves a relay over TLS that admits the members' keys, and
// points each member's engine at it.
func startRelay(t *testing.T, ms ...*member) *tls.Config {
	t.Helper()
	known := map[key.Public]bool{}
	for _, m := range ms {
		known[m.eng.PublicKey()] = true
	}
	s, err := relay.NewServer(func(_ context.Context, k key.Public) bool { return known[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(relay.Path, s)
	ts := httptest.NewTLSServer(mux)
	t.Cleanup(func() { ts.Close(); s.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	conf := &tls.Config{RootCAs: pool, ServerName: "example.com"}
	for _, m := range ms {
		if err := m.eng.SetRelay(ts.URL+relay.Path, conf, nil); err != nil {
			t.Fatal(err)
		}
	}
	return conf
}

// unreachable is an address in TEST-NET-1: nothing answers there, as
// when a network drops the UDP.
var unreachable = []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:51820")}

// applyEndpoints gives m a netmap with peers reached at eps (nil: their
// real loopback ports).
func (m *member) applyEndpoints(t *testing.T, seq uint64, eps []netip.AddrPort, peers ...*member) {
	t.Helper()
	nm := m.netmap(seq, peers...)
	if eps != nil {
		for i := range nm.Peers {
			nm.Peers[i].Endpoints = eps
		}
	}
	if err := m.eng.Reconfig(nm); err != nil {
		t.Fatal(err)
	}
}

func pathTo(t *testing.T, from, to *member) PeerStatus {
	t.Helper()
	ps, err := from.eng.Peers()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Key.Equal(to.eng.PublicKey()) {
			return p
		}
	}
	t.Fatalf("peer %s not configured", to.eng.PublicKey().Short())
	return PeerStatus{}
}

// With no UDP path between two members, their traffic goes through the
// relay; when a direct path appears, both move to it while traffic flows.
func TestRelayThenDirect(t *testing.T) {
	a, b := newMember(t, 1), newMember(t, 2)
	startRelay(t, a, b)
	a.applyEndpoints(t, 1, unreachable, b)
	b.applyEndpoints(t, 1, unreachable, a)
	b.serveHTTP(t, "b")
	ca := a.client(10 * time.Second)

	start := time.Now()
	if got, err := get(ca, b.addrs[0]); err != nil || !strings.HasPrefix(got, "b saw 100.64.0.1:") {
		t.Fatalf("over the relay: %q, %v", got, err)
	}
	t.Logf("first answer over the relay after %v", time.Since(start))
	if p := pathTo(t, a, b); p.Path != PathRelay || !strings.HasSuffix(p.Relay, relay.Path) {
		t.Fatalf("a's path to b = %+v, want the relay", p)
	}

	// The direct path opens: the netmaps now carry real addresses.
	a.applyEndpoints(t, 2, nil, b)
	b.applyEndpoints(t, 2, nil, a)
	opened := time.Now()
	deadline := opened.Add(10 * time.Second)
	for pathTo(t, a, b).Path != PathDirect || pathTo(t, b, a).Path != PathDirect {
		if time.Now().After(deadline) {
			t.Fatalf("still not direct 10 s after the path opened: a→b %+v, b→a %+v", pathTo(t, a, b), pathTo(t, b, a))
		}
		if _, err := get(ca, b.addrs[0]); err != nil {
			t.Fatalf("traffic broke while moving to direct: %v", err)
		}
	}
	t.Logf("direct both ways %v after the path opened", time.Since(opened))
	p := pathTo(t, a, b)
	if p.Endpoint != netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), b.eng.Port()).String() || p.RTT <= 0 {
		t.Fatalf("direct path status %+v: want b's port and a round-trip time", p)
	}
}

// A member the relay does not admit reaches no one through it.
func TestRelayRefusesStranger(t *testing.T) {
	a, b, stranger := newMember(t, 1), newMember(t, 2), newMember(t, 3)
	conf := startRelay(t, a, b)
	if err := stranger.eng.SetRelay(a.eng.Relay().URL, conf, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for stranger.eng.Relay().Err == nil || !a.eng.Relay().Connected {
		if time.Now().After(deadline) {
			t.Fatalf("relay states: a %+v, stranger %+v", a.eng.Relay(), stranger.eng.Relay())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if stranger.eng.Relay().Connected {
		t.Fatal("the stranger is connected to the relay")
	}
	if !strings.Contains(stranger.eng.Relay().Err.Error(), "before admitting") {
		t.Fatalf("stranger refused with %v, want the admission refusal", stranger.eng.Relay().Err)
	}
}
