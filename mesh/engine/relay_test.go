package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
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
func startRelay(t *testing.T, ms ...*member) *tls.Config { return startRelayTB(t, ms...) }

func startRelayTB(t testing.TB, ms ...*member) *tls.Config {
	t.Helper()
	known := map[key.Public]bool{}
	for _, m := range ms {
		known[m.eng.PublicKey()] = true
	}
	s, err := relay.NewServer(relay.ServerConfig{Admit: func(_ context.Context, k key.Public) bool { return known[k] }})
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

func pathTo(t testing.TB, from, to *member) PeerStatus {
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

// BenchmarkPath measures TCP throughput between two netstack engines in
// this process over a direct UDP path and through the relay over TLS,
// the CPU both (and the relay) spend per MB sent (on a loaded machine
// throughput varies from run to run, CPU per MB much less) and the
// packets the relay dropped.
func BenchmarkPath(b *testing.B) {
	for _, path := range []string{PathDirect, PathRelay} {
		b.Run(path, func(b *testing.B) {
			x, y := newMember(b, 1), newMember(b, 2)
			var eps []netip.AddrPort
			if path == PathRelay {
				startRelayTB(b, x, y)
				eps = unreachable
			}
			nmx, nmy := x.netmap(1, y), y.netmap(1, x)
			if eps != nil {
				nmx.Peers[0].Endpoints, nmy.Peers[0].Endpoints = eps, eps
			}
			if err := x.eng.Reconfig(nmx); err != nil {
				b.Fatal(err)
			}
			if err := y.eng.Reconfig(nmy); err != nil {
				b.Fatal(err)
			}
			ln, err := y.eng.Listen("tcp", ":9000")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					go func() { io.Copy(io.Discard, c); c.Close() }()
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, err := x.eng.Dial(ctx, "tcp", netip.AddrPortFrom(y.addrs[0], 9000).String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			cpu0, drops0 := cpuTime(), relay.DropTotal()
			for range b.N {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/MiB")
			// Packets the relay dropped (its queue for the receiver was
			// full): each is a loss the inner TCP retransmits and slows
			// down for.
			b.ReportMetric(float64(relay.DropTotal()-drops0), "relay-drops")
			if p := pathTo(b, x, y); p.Path != path {
				b.Fatalf("path %s, want %s", p.Path, path)
			}
		})
	}
}
