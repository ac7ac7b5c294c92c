package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// member is one engine in a test mesh with the addresses it claims.
type member struct {
	eng   *Engine
	addrs []netip.Addr
}

func newMember(t testing.TB, n int) *member {
	t.Helper()
	return newMemberLog(t, n, testLogger())
}

// newMemberLog is newMember logging to log.
func newMemberLog(t testing.TB, n int, log *slog.Logger) *member {
	t.Helper()
	priv, err := key.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{PrivateKey: priv, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return &member{eng: e, addrs: []netip.Addr{
		netip.AddrFrom4([4]byte{100, 64, 0, byte(n)}),
		netip.MustParseAddr(fmt.Sprintf("fd7a:6d6f:6174::%x", n)),
	}}
}

func (m *member) asPeer() wire.Peer {
	return wire.Peer{
		Key:       m.eng.PublicKey(),
		Addresses: m.addrs,
		Endpoints: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), m.eng.Port())},
		Identity:  wire.Identity{DeviceID: wire.DeviceID(m.addrs[0].String())},
	}
}

func (m *member) netmap(seq uint64, peers ...*member) *wire.NetMap {
	nm := &wire.NetMap{Version: wire.Version, Seq: seq, Self: wire.Self{Key: m.eng.PublicKey(), Addresses: m.addrs}}
	for _, p := range peers {
		nm.Peers = append(nm.Peers, p.asPeer())
	}
	return nm
}

func (m *member) apply(t testing.TB, seq uint64, peers ...*member) {
	t.Helper()
	if err := m.eng.Reconfig(m.netmap(seq, peers...)); err != nil {
		t.Fatal(err)
	}
}

// serveHTTP answers every request with "NAME saw REMOTEADDR".
func (m *member) serveHTTP(t testing.TB, name string) {
	t.Helper()
	ln, err := m.eng.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s saw %s", name, r.RemoteAddr)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// client returns an HTTP client that dials over m's engine with a short
// timeout and no connection reuse, so every call is a fresh TCP flow.
func (m *member) client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext:       m.eng.Dial,
		DisableKeepAlives: true,
	}}
}

func get(c *http.Client, addr netip.Addr) (string, error) {
	resp, err := c.Get("http://" + netip.AddrPortFrom(addr, 80).String() + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestNetstackHTTPBothWays(t *testing.T) {
	a, b := newMember(t, 1), newMember(t, 2)
	a.apply(t, 1, b)
	b.apply(t, 1, a)
	a.serveHTTP(t, "a")
	b.serveHTTP(t, "b")
	for _, tc := range []struct {
		from, to *member
		want     string
		addr     int
	}{
		{a, b, "b saw 100.64.0.1:", 0},
		{b, a, "a saw 100.64.0.2:", 0},
		{a, b, "b saw [fd7a:6d6f:6174::1]:", 1},
		{b, a, "a saw [fd7a:6d6f:6174::2]:", 1},
	} {
		got, err := get(tc.from.client(10*time.Second), tc.to.addrs[tc.addr])
		if err != nil {
			t.Fatalf("GET %s: %v", tc.to.addrs[tc.addr], err)
		}
		// The server sees the caller's mesh address: this is what the guard
		// will use to know who is asking.
		if !strings.HasPrefix(got, tc.want) {
			t.Fatalf("got %q, want prefix %q", got, tc.want)
		}
	}
	ps, err := a.eng.Peers()
	if err != nil || len(ps) != 1 || !ps[0].Key.Equal(b.eng.PublicKey()) || ps[0].LastHandshake.IsZero() || ps[0].RxBytes == 0 {
		t.Fatalf("peer status after traffic: %+v, %v", ps, err)
	}
}

func TestReconfigRemoveAndRestorePeer(t *testing.T) {
	a, b, c := newMember(t, 1), newMember(t, 2), newMember(t, 3)
	a.apply(t, 1, b, c)
	b.apply(t, 1, a, c)
	c.apply(t, 1, a, b)
	b.serveHTTP(t, "b")
	c.serveHTTP(t, "c")
	ca := a.client(10 * time.Second)
	if _, err := get(ca, b.addrs[0]); err != nil {
		t.Fatalf("before removal: %v", err)
	}
	if _, err := get(ca, c.addrs[0]); err != nil {
		t.Fatalf("before removal: %v", err)
	}
	hsBefore := handshake(t, a, c)

	// Hold a connection open to b across the removal: it must stop at once.
	conn, err := a.eng.Dial(context.Background(), "tcp", netip.AddrPortFrom(b.addrs[0], 80).String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	a.apply(t, 2, c) // b removed
	if _, err := get(a.client(time.Second), b.addrs[0]); err == nil {
		t.Fatal("a still reaches b after b was removed from a's netmap")
	}
	conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: b\r\n\r\n"); err == nil {
		if n, err := conn.Read(make([]byte, 64)); err == nil {
			t.Fatalf("open connection to a removed peer still answered (%d bytes)", n)
		}
	}
	// c was untouched by the change: same session, still reachable.
	if _, err := get(ca, c.addrs[0]); err != nil {
		t.Fatalf("unchanged peer lost: %v", err)
	}
	if hs := handshake(t, a, c); !hs.Equal(hsBefore) {
		t.Fatalf("unchanged peer re-handshook (%v → %v): its session was reset", hsBefore, hs)
	}

	a.apply(t, 3, b, c) // b back, without a restart
	if got, err := get(a.client(10*time.Second), b.addrs[0]); err != nil || !strings.HasPrefix(got, "b saw") {
		t.Fatalf("after restoring b: %q, %v", got, err)
	}
}

func handshake(t *testing.T, from, to *member) time.Time {
	t.Helper()
	return pathTo(t, from, to).LastHandshake
}

func TestBadNetMapLeavesConfigUntouched(t *testing.T) {
	a, b := newMember(t, 1), newMember(t, 2)
	a.apply(t, 1, b)
	b.apply(t, 1, a)
	b.serveHTTP(t, "b")
	ca := a.client(10 * time.Second)
	if _, err := get(ca, b.addrs[0]); err != nil {
		t.Fatal(err)
	}
	good := a.eng.NetMap()

	other, _ := key.NewPrivate()
	overlap := a.netmap(2, b)
	overlap.Peers[0].Addresses = a.addrs[:1]
	noKey := a.netmap(2, b)
	noKey.Peers[0].Key = key.Public{}
	foreign := a.netmap(2, b)
	foreign.Self.Key = other.Public()
	for name, tc := range map[string]struct {
		nm   *wire.NetMap
		want string
	}{
		"overlapping addresses": {overlap, "already the address of self"},
		"missing peer key":      {noKey, "peers[0].key: missing"},
		"someone else's netmap": {foreign, "netmap is for key"},
		"nil":                   {nil, "nil netmap"},
	} {
		err := a.eng.Reconfig(tc.nm)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, tc.want)
		}
	}
	// Garbage from the wire never reaches Reconfig: decoding refuses it.
	for _, raw := range []string{`{"version":1,"self":{"key":"c2hvcnQ="}}`, `not json`} {
		if _, err := wire.DecodeNetMap(strings.NewReader(raw)); err == nil {
			t.Errorf("decoded %q", raw)
		}
	}
	if a.eng.NetMap() != good {
		t.Fatal("a refused netmap replaced the applied one")
	}
	if _, err := get(ca, b.addrs[0]); err != nil {
		t.Fatalf("traffic broken after refused netmaps: %v", err)
	}
}

func TestListenRefusesForeignAddress(t *testing.T) {
	a := newMember(t, 1)
	if _, err := a.eng.Listen("tcp", ":80"); err == nil {
		t.Fatal("listen before any netmap should fail: no mesh address yet")
	}
	a.apply(t, 1)
	if _, err := a.eng.Listen("tcp", "100.64.0.9:80"); err == nil || !strings.Contains(err.Error(), "not a mesh address") {
		t.Fatalf("listen on a foreign address: %v", err)
	}
	if _, err := a.eng.Dial(context.Background(), "tcp", "example.com:80"); err == nil {
		t.Fatal("dial by name should be refused")
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := range 2 {
		priv, _ := key.NewPrivate()
		e, err := New(Config{PrivateKey: priv, Logger: testLogger()})
		if err != nil {
			t.Fatal(err)
		}
		self := &member{eng: e, addrs: []netip.Addr{netip.AddrFrom4([4]byte{100, 64, 1, byte(i)})}}
		self.apply(t, 1)
		ln, err := e.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		ln.Close()
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := e.Dial(context.Background(), "tcp", "100.64.0.1:80"); !errors.Is(err, ErrClosed) {
			t.Fatalf("dial after close: %v", err)
		}
	}
	waitGoroutines(t, before)
}

// waitGoroutines waits until no more than n goroutines run, or fails with
// the stacks of the ones left.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines left after Close, want <= %d:\n%s", runtime.NumGoroutine(), n, buf)
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond)
	}
}

var _ net.Listener = (*multiListener)(nil)

// After a peer update failed part-way, the next Reconfig replaces the
// whole peer set, so a peer removed meanwhile cannot linger.
func TestReconfigResyncAfterFailure(t *testing.T) {
	a, b, c := newMember(t, 1), newMember(t, 2), newMember(t, 3)
	a.apply(t, 1, b, c)
	// Simulate the state after a failed IpcSet: the device holds b and c,
	// but the engine no longer trusts its record of that.
	a.eng.mu.Lock()
	a.eng.mu.resync = true
	a.eng.mu.peers = map[key.Public]peerConfig{}
	a.eng.mu.Unlock()
	a.apply(t, 2, c)
	ps, err := a.eng.Peers()
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || !ps[0].Key.Equal(c.eng.PublicKey()) {
		t.Fatalf("after a resync the device has %d peers, want only c", len(ps))
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("MOAT_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
