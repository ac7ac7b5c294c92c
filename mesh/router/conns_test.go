package router

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/engine"
)

// Sequential requests share one kept-alive connection to the node.
func TestConnectionsKeptAlive(t *testing.T) {
	a := newMember(t, 2, "gpu-a", "m")
	g := a.serve(t, nil)
	m := newMesh(t, nil, a)
	for i := range 20 {
		if status, got := m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != http.StatusOK || !strings.HasPrefix(got, "gpu-a") {
			t.Fatalf("request %d: %d %q", i, status, got)
		}
	}
	if n := g.conns.Load(); n != 1 {
		t.Fatalf("20 sequential requests opened %d connections to the node, want 1", n)
	}
	if exp := g.last().Header.Get("Expect"); exp != "" {
		t.Fatalf("request carried Expect %q: the engine's receive times are the liveness check, no 100 Continue is needed", exp)
	}
}

// A node that vanishes (its packets go nowhere, as when it crashes)
// while the router holds a connection to it costs a request no more
// than the acknowledgement deadline: it is answered by the other node.
func TestKeptConnectionToVanishedNode(t *testing.T) {
	a, b := newMember(t, 2, "gpu-a", "m"), newMember(t, 3, "gpu-b", "m")
	ga, gb := a.serve(t, nil), b.serve(t, nil)
	const ack = 500 * time.Millisecond
	m := newMesh(t, func(c *Config) { c.ConnectTimeout = ack }, a, b)
	for ga.count() == 0 || gb.count() == 0 { // both have a kept connection
		if status, _ := m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != http.StatusOK {
			t.Fatalf("with both nodes up: %d", status)
		}
	}
	a.Eng.Close()
	for i := range 4 {
		began := time.Now()
		status, got := m.post(t, "/v1/chat/completions", `{"model":"m"}`)
		took := time.Since(began)
		if status != http.StatusOK || !strings.HasPrefix(got, "gpu-b") {
			t.Fatalf("request %d with gpu-a gone: %d %q", i, status, got)
		}
		// The deadline, then gpu-b; gpu-a's fresh connection comes last and
		// is not needed. Generous slack for a loaded machine.
		if took > ack+5*time.Second {
			t.Fatalf("request %d took %v with gpu-a gone", i, took)
		}
	}
}

// A node that restarted has forgotten the WireGuard session and the
// connection the router kept: the request is sent again on a new one.
func TestKeptConnectionToRestartedNode(t *testing.T) {
	a := newMember(t, 2, "gpu-a", "m")
	a.serve(t, nil)
	m := newMesh(t, nil, a) // the default deadline, 3 s
	if status, _ := m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != http.StatusOK {
		t.Fatalf("before the restart: %d", status)
	}
	a.Restart(t, a.netmap(m.client))
	g := a.serve(t, nil)
	began := time.Now()
	status, got := m.post(t, "/v1/chat/completions", `{"model":"m"}`)
	took := time.Since(began)
	if status != http.StatusOK || !strings.HasPrefix(got, "gpu-a") || g.count() != 1 {
		t.Fatalf("after the restart: %d %q (restarted guard saw %d)", status, got, g.count())
	}
	// The session is renewed after renewAfter, not at the 3 s deadline.
	t.Logf("first request after the restart took %v", took.Round(time.Millisecond))
	if took >= DefaultConnectTimeout {
		t.Fatalf("first request after the restart took %v: the stale session was not renewed before the deadline", took)
	}
}

// A node that vanishes with a request on its way, right after answering
// the one before on the same kept connection, costs that request the
// deadline: its earlier packets prove nothing about this request, and
// the other node answers it.
func TestNodeVanishesAfterRequestWritten(t *testing.T) {
	a, b := newMember(t, 2, "gpu-a", "m"), newMember(t, 3, "gpu-b", "m")
	ga, gb := a.serve(t, nil), b.serve(t, nil)
	const timeout = time.Second
	d := &vanishingDialer{Engine: nil, nodes: map[string]*member{}}
	m := newMesh(t, func(c *Config) { c.ConnectTimeout = timeout; c.Dialer = d }, a, b)
	d.Engine = m.client.Eng
	for _, n := range []*member{a, b} {
		d.nodes[netip.AddrPortFrom(n.Addrs[0], DefaultGuardPort).String()] = n
	}
	for ga.count() == 0 || gb.count() == 0 { // both have a kept connection
		if status, _ := m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != http.StatusOK {
			t.Fatalf("with both nodes up: %d", status)
		}
	}
	seenA, seenB := ga.count(), gb.count()
	began := time.Now()
	status, got := m.post(t, "/v1/chat/completions", `{"model":"m","vanish":true}`)
	took := time.Since(began)
	gone := d.vanished.Load()
	if gone == nil {
		t.Fatal("the request was not written to a kept connection")
	}
	other := map[*member]string{a: "gpu-b", b: "gpu-a"}[gone]
	if status != http.StatusOK || !strings.HasPrefix(got, other) {
		t.Fatalf("with %s gone after the request was written: %d %q, want %s's answer", gone.name, status, got, other)
	}
	if ga.count()+gb.count() != seenA+seenB+1 {
		t.Fatalf("the vanished node's guard saw the request: %d+%d requests, want %d", ga.count(), gb.count(), seenA+seenB+1)
	}
	// The deadline, then the other node. Generous slack for a loaded machine.
	t.Logf("the request took %v", took.Round(time.Millisecond))
	if took > timeout+5*time.Second {
		t.Fatalf("the request took %v with %s gone", took, gone.name)
	}
}

// vanishingDialer is the client's engine whose connections close a
// node's engine just before they write a request that mentions "vanish".
type vanishingDialer struct {
	*engine.Engine                    // Dial, LastReceive, RenewSession
	nodes          map[string]*member // by guard address
	vanished       atomic.Pointer[member]
}

func (d *vanishingDialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.Engine.Dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &vanishingConn{Conn: c, d: d, node: d.nodes[addr]}, nil
}

type vanishingConn struct {
	net.Conn
	d    *vanishingDialer
	node *member
}

func (c *vanishingConn) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("vanish")) && c.d.vanished.CompareAndSwap(nil, c.node) {
		c.node.Eng.Close()
	}
	return c.Conn.Write(p)
}

// A model that takes longer than the deadline to send its first byte is
// not retried elsewhere: its node's TCP acknowledged the request, which
// proves it has it, though the guard reads no body and sends no 100.
func TestSlowModelNotRetried(t *testing.T) {
	const timeout = time.Second
	slow := func(w http.ResponseWriter, r *http.Request) {
		<-time.After(2 * timeout) // the model thinking, before the body is read
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}
	a, b := newMember(t, 2, "gpu-a", "m"), newMember(t, 3, "gpu-b", "m")
	ga, gb := a.serve(t, slow), b.serve(t, slow)
	m := newMesh(t, func(c *Config) { c.ConnectTimeout = timeout }, a, b)
	for i := range 2 { // the second goes over a kept connection
		body := fmt.Sprintf(`{"model":"m","n":%d}`, i)
		if status, got := m.post(t, "/v1/chat/completions", body); status != http.StatusOK || got != body {
			t.Fatalf("request %d: %d %q", i, status, got)
		}
		if n := ga.count() + gb.count(); n != i+1 {
			t.Fatalf("after request %d the nodes saw %d requests: a slow answer was retried", i, n)
		}
	}
}

// A Dialer that cannot tell when a node last sent anything gets the
// proof of receipt from the guard's 100 Continue: a slow answer on a
// kept connection is not retried either.
func TestContinueWithoutLastReceiver(t *testing.T) {
	const timeout = time.Second
	a := newMember(t, 2, "gpu-a", "m")
	g := a.serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // the guard reads the body first
		<-time.After(2 * timeout)
		io.WriteString(w, "slow answer")
	})
	m := newMesh(t, func(c *Config) {
		c.ConnectTimeout = timeout
		c.Dialer = struct{ Dialer }{c.Dialer} // Dial only
	}, a)
	for i := range 2 { // the second goes over the kept connection
		if status, got := m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != http.StatusOK || got != "slow answer" {
			t.Fatalf("request %d: %d %q", i, status, got)
		}
	}
	if n := g.count(); n != 2 {
		t.Fatalf("the node saw %d requests for 2: a slow answer was retried", n)
	}
	if exp := g.last().Header.Get("Expect"); exp != "100-continue" {
		t.Fatalf("request carried Expect %q, want 100-continue", exp)
	}
}

// A node whose guard stopped (its kept connections closed, nothing
// listening) is dialled once for a request — the client's resend of what
// the closed kept connection failed — and not once more as the "new
// connection, last" retry: to a node that is gone, each dial can cost the
// whole connect timeout.
func TestStoppedGuardIsDialledOnce(t *testing.T) {
	a := newMember(t, 2, "gpu-a", "m")
	g := a.serve(t, nil)
	d := &countingDialer{}
	m := newMesh(t, func(c *Config) { c.Dialer = d }, a)
	d.Engine = m.client.Eng
	if status, _ := m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != http.StatusOK {
		t.Fatalf("with the guard up: %d", status)
	}
	g.stop()
	before := d.dials.Load()
	if status, got := m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != http.StatusServiceUnavailable || !strings.Contains(got, "gpu-a") {
		t.Fatalf("with the guard stopped: %d %q, want a 503 naming gpu-a", status, got)
	}
	if n := d.dials.Load() - before; n != 1 {
		t.Fatalf("the stopped node was dialled %d times for one request, want 1", n)
	}
}

// countingDialer is the client's engine, counting its dials.
type countingDialer struct {
	*engine.Engine // Dial, LastReceive, RenewSession
	dials          atomic.Int64
}

func (d *countingDialer) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.dials.Add(1)
	return d.Engine.Dial(ctx, network, addr)
}
