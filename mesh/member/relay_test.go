package member

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/mesh/wire"
)

// TestRelayFallsBackAndReturns: of the netmap's relays, a member uses the
// first that answers: the first not listening, it moves to the second
// within relayDownAfter and a probe; when the first answers again, it
// goes back to it within relayRecheck.
func TestRelayFallsBackAndReturns(t *testing.T) {
	admitAll := func(context.Context, key.Public) bool { return true }
	newRelay := func() *relay.Server {
		rs, err := relay.NewServer(relay.ServerConfig{Admit: admitAll})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rs.Close() })
		return rs
	}
	second := httptest.NewServer(newRelay())
	t.Cleanup(second.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	firstAddr := ln.Addr().String()
	ln.Close() // the first relay is down
	firstURL, secondURL := "http://"+firstAddr+relay.Path, second.URL+relay.Path

	priv, _ := key.NewPrivate()
	m, err := New(Config{PrivateKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close() // before the fake coordinator closes, which waits for the stream
	nm := netmap(priv.Public(), 1, "100.64.0.7")
	nm.Relays = []wire.Relay{{URL: firstURL}, {URL: secondURL}}
	m.SetControl(fakeCoordinator(t, nm))
	go m.Run(context.Background())

	on := func(want string, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for deadline := start.Add(within); ; time.Sleep(20 * time.Millisecond) {
			st := m.Engine().Relay()
			if st.URL == want && st.Connected {
				return time.Since(start)
			}
			if time.Now().After(deadline) {
				t.Fatalf("relay %+v after %v, want connected to %s", st, within, want)
			}
		}
	}
	took := on(secondURL, 10*time.Second)
	t.Logf("on the second relay %v after the netmap", took.Round(time.Millisecond))

	ln, err = net.Listen("tcp", firstAddr)
	if err != nil {
		t.Skipf("the first relay's port was taken meanwhile: %v", err)
	}
	first := &httptest.Server{Listener: ln, Config: &http.Server{Handler: newRelay()}}
	first.Start()
	t.Cleanup(first.Close)
	took = on(firstURL, relayRecheck+5*time.Second)
	t.Logf("back on the first relay %v after it listened", took.Round(time.Millisecond))
}
