package member

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
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
	newRelay := func() *relay.Server { return testRelayServer(t, admitAll) }
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

// TestRelayLeavesRelayThatRefuses: a relay may answer its probe yet
// refuse the member (its admission fails closed, say its database is
// down; or a proxy passes the probe but not the upgrade). The member
// moves to the second relay within a few seconds and does not go back to
// the first at the next recheck.
func TestRelayLeavesRelayThatRefuses(t *testing.T) {
	for _, mode := range []string{"admission", "upgrade-refused"} {
		t.Run(mode, func(t *testing.T) {
			deny := func(context.Context, key.Public) bool { return false }
			newRelay := func(a relay.Admit) *relay.Server { return testRelayServer(t, a) }
			var h http.Handler = newRelay(deny)
			if mode == "upgrade-refused" {
				inner := newRelay(admitAll)
				h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == relay.Path+"/probe" {
						inner.ServeHTTP(w, r)
						return
					}
					http.Error(w, "no upgrades here", http.StatusForbidden)
				})
			}
			first := httptest.NewServer(h)
			t.Cleanup(first.Close)
			second := httptest.NewServer(newRelay(admitAll))
			t.Cleanup(second.Close)
			firstURL, secondURL := first.URL+relay.Path, second.URL+relay.Path
			if err := relayAnswers(context.Background(), firstURL, nil, nil); err != nil {
				t.Fatalf("the refusing relay does not answer its probe: %v", err)
			}

			priv, _ := key.NewPrivate()
			m, err := New(Config{PrivateKey: priv})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			nm := netmap(priv.Public(), 1, "100.64.0.7")
			nm.Relays = []wire.Relay{{URL: firstURL}, {URL: secondURL}}
			m.SetControl(fakeCoordinator(t, nm))
			go m.Run(context.Background())

			start := time.Now()
			for deadline := start.Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				st := m.Engine().Relay()
				if st.URL == firstURL && st.Connected {
					t.Fatalf("connected to the refusing relay: %+v", st)
				}
				if st.URL == secondURL && st.Connected {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("relay %+v after 10 s, want connected to the second %s", st, secondURL)
				}
			}
			t.Logf("on the second relay %v after the netmap", time.Since(start).Round(time.Millisecond))
			// Stays past two rechecks (but not relayFailedFor).
			for deadline := time.Now().Add(2*relayRecheck + time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if st := m.Engine().Relay(); st.URL != secondURL {
					t.Fatalf("went back to %s (%+v) before relayFailedFor", st.URL, st)
				}
			}
		})
	}
}

// TestRelayStaleChoiceNotApplied: the netmap stops naming a relay while
// the chooser is asking it; the answer, come late, must not put the
// engine on a relay no longer named, and with one relay left the chooser
// stays on it.
func TestRelayStaleChoiceNotApplied(t *testing.T) {
	newRelay := func() *relay.Server { return testRelayServer(t, admitAll) }
	inner := newRelay()
	var up atomic.Bool
	probing := make(chan struct{}, 16)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == relay.Path+"/probe" {
			probing <- struct{}{}
			time.Sleep(1500 * time.Millisecond)
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(slow.Close)
	own := httptest.NewServer(newRelay())
	t.Cleanup(own.Close)
	removed, ownURL := slow.URL+relay.Path, own.URL+relay.Path

	priv, _ := key.NewPrivate()
	m, err := New(Config{PrivateKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctl := fakeCoordinator(t)
	c := m.relays()
	c.set([]string{removed, ownURL}, ctl)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if st := m.Engine().Relay(); st.URL == ownURL && st.Connected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("relay %+v, want connected to %s", m.Engine().Relay(), ownURL)
		}
	}
	up.Store(true)
	select {
	case <-probing: // the recheck asks the better relay...
	case <-time.After(2*relayRecheck + relayFailedFor):
		t.Fatal("the chooser never asked the better relay again")
	}
	c.set([]string{ownURL}, ctl) // ...and meanwhile the netmap stops naming it
	for deadline := time.Now().Add(2 * relayProbeWait); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		st := m.Engine().Relay()
		c.mu.Lock()
		cur := c.mu.current
		c.mu.Unlock()
		if st.URL != ownURL || cur != ownURL {
			t.Fatalf("engine on %s, chooser on %s; the netmap names only %s", st.URL, cur, ownURL)
		}
	}
}

// TestRelayConcurrentUseAgrees: choices applied at once (the chooser's
// and a new netmap's) leave the engine on the relay the chooser believes
// current.
func TestRelayConcurrentUseAgrees(t *testing.T) {
	priv, _ := key.NewPrivate()
	m, err := New(Config{PrivateKey: priv})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctl := fakeCoordinator(t)
	urls := []string{"http://127.0.0.1:1/derp", "http://127.0.0.1:2/derp", "http://127.0.0.1:3/derp", "http://127.0.0.1:4/derp"}
	c := m.relays()
	c.set(urls, ctl)
	for round := range 50 {
		var wg sync.WaitGroup
		for _, u := range urls {
			wg.Go(func() { c.use(u, ctl) })
		}
		wg.Wait()
		c.mu.Lock()
		cur := c.mu.current
		c.mu.Unlock()
		if st := m.Engine().Relay(); st.URL != cur {
			t.Fatalf("round %d: engine on %s, chooser believes %s", round, st.URL, cur)
		}
	}
	if c.use("http://127.0.0.1:5/derp", ctl) {
		t.Error("use applied a relay the relays do not name")
	}
}

// admitAll admits every key.
func admitAll(context.Context, key.Public) bool { return true }

// testRelayServer is a relay admitting what admit admits, closed when
// the test ends; serve it with httptest.
func testRelayServer(t *testing.T, admit relay.Admit) *relay.Server {
	t.Helper()
	rs, err := relay.NewServer(relay.ServerConfig{Admit: admit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	return rs
}
