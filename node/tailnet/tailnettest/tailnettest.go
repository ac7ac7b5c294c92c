// Package tailnettest brings up a whole tailnet inside a test process, as
// tsnet's own tests do: Tailscale's test control server
// (tstest/integration/testcontrol), a DERP relay and a STUN server on
// loopback, and tsnet nodes joined to it on in-memory state.
//
// It calls netns.SetEnabled(false) for the life of the test (no socket
// marking, Corp#4520 in tsnet's tests) and keeps tsnet's logs quiet.
package tailnettest

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"tailscale.com/derp/derpserver"
	"tailscale.com/ipn/store/mem"
	"tailscale.com/net/netns"
	"tailscale.com/net/stun/stuntest"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
	"tailscale.com/types/logger"
	"tailscale.com/types/nettype"
)

// Tailnet is a running test tailnet.
type Tailnet struct {
	// Control is the control server: tests change nodes through it
	// (UpdateNode, SetGlobalAppCaps, …).
	Control *testcontrol.Server
	// URL is the control server's URL, for tsnet.Server.ControlURL.
	URL string
	// DERPMap is the relay and STUN server the control hands out.
	DERPMap *tailcfg.DERPMap
}

// Start brings up control, DERP and STUN on 127.0.0.1; they stop when
// the test ends. Nodes may request tags (tsnet.Server.AdvertiseTags):
// the control grants them.
func Start(t testing.TB) *Tailnet {
	t.Helper()
	netns.SetEnabled(false)
	t.Cleanup(func() { netns.SetEnabled(true) })
	return StartOn(t, "127.0.0.1")
}

// StartOn is Start on the address ip (of a network namespace, say),
// leaving socket marking as it is.
func StartOn(t testing.TB, ip string) *Tailnet {
	t.Helper()
	derpMap := startDERPAndSTUN(t, ip)
	control := &testcontrol.Server{
		DERPMap:        derpMap,
		DNSConfig:      &tailcfg.DNSConfig{Proxied: true},
		MagicDNSDomain: "tail-scale.ts.net",
		TagOwners:      map[string][]string{}, // honour the tags nodes ask for
		Logf:           logger.Discard,
	}
	control.HTTPTestServer = httptest.NewUnstartedServer(control)
	control.HTTPTestServer.Listener.Close()
	control.HTTPTestServer.Listener = listen(t, ip)
	control.HTTPTestServer.Config.ErrorLog = log.New(io.Discard, "", 0)
	control.HTTPTestServer.Start()
	t.Cleanup(func() {
		control.HTTPTestServer.CloseClientConnections()
		control.HTTPTestServer.Close()
	})
	return &Tailnet{Control: control, URL: control.HTTPTestServer.URL, DERPMap: derpMap}
}

// startDERPAndSTUN is tstest/integration.RunDERPAndSTUN without the rest
// of that package (which would pull modules go.mod does not need).
func startDERPAndSTUN(t testing.TB, ip string) *tailcfg.DERPMap {
	d := derpserver.New(key.NewNode(), logger.Discard)
	srv := httptest.NewUnstartedServer(derpserver.Handler(d))
	srv.Listener.Close()
	srv.Listener = listen(t, ip)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.TLSNextProto = make(map[string]func(*http.Server, *tls.Conn, http.Handler))
	srv.StartTLS()
	stunAddr, stopSTUN := stuntest.ServeWithPacketListener(t, nettype.Std{})
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		d.Close()
		stopSTUN()
	})
	return &tailcfg.DERPMap{Regions: map[int]*tailcfg.DERPRegion{1: {
		RegionID: 1, RegionCode: "test",
		Nodes: []*tailcfg.DERPNode{{
			Name: "t1", RegionID: 1, HostName: ip, IPv4: ip, IPv6: "none",
			STUNPort: stunAddr.Port, DERPPort: srv.Listener.Addr().(*net.TCPAddr).Port,
			InsecureForTests: true, STUNTestIP: ip,
		}},
	}}}
}

// Join starts a tsnet node named hostname on the tailnet, asking for
// tags, and waits until it is up and connected to its home relay. It is
// closed when the test ends.
func (tn *Tailnet) Join(t testing.TB, ctx context.Context, hostname string, tags ...string) *tsnet.Server {
	t.Helper()
	s := tn.Server(t, hostname, tags...)
	if _, err := s.Up(ctx); err != nil {
		t.Fatalf("%s: up: %v", hostname, err)
	}
	if err := WaitForHomeDERP(ctx, s); err != nil {
		t.Fatalf("%s: %v", hostname, err)
	}
	return s
}

// Server returns an unstarted tsnet node for the tailnet (ephemeral, on
// in-memory state), closed when the test ends.
func (tn *Tailnet) Server(t testing.TB, hostname string, tags ...string) *tsnet.Server {
	dir := filepath.Join(t.TempDir(), hostname)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &tsnet.Server{Dir: dir, ControlURL: tn.URL, Hostname: hostname, Store: new(mem.Store), Ephemeral: true,
		AdvertiseTags: tags, Logf: logger.Discard, UserLogf: logger.Discard}
	t.Cleanup(func() { s.Close() })
	return s
}

// WaitForHomeDERP blocks until s has picked a home relay and heard from
// it, as tsnet's tests do: until then the relay drops disco frames for s
// and a first connection can stall.
func WaitForHomeDERP(ctx context.Context, s *tsnet.Server) error {
	h := s.Sys().HealthTracker.Get()
	ms := s.Sys().MagicSock.Get()
	for {
		if r := ms.GetLastNetcheckReport(ctx); r != nil && r.PreferredDERP != 0 && !h.GetDERPRegionReceivedTime(r.PreferredDERP).IsZero() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func listen(t testing.TB, ip string) net.Listener {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
