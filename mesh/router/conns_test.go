package router

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
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
	if exp := g.last().Header.Get("Expect"); exp != "100-continue" {
		t.Fatalf("request carried Expect %q, want the liveness check 100-continue", exp)
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

// The acknowledgement deadline bounds only the node's receipt of the
// request, never how long the model takes to answer.
func TestSlowAnswerOnKeptConnection(t *testing.T) {
	a := newMember(t, 2, "gpu-a", "m")
	a.serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // the guard reads the body first
		time.Sleep(2 * time.Second)
		io.WriteString(w, "slow answer")
	})
	m := newMesh(t, func(c *Config) { c.ConnectTimeout = time.Second }, a)
	for i := range 2 { // the second goes over the kept connection
		if status, got := m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != http.StatusOK || got != "slow answer" {
			t.Fatalf("request %d: %d %q", i, status, got)
		}
	}
}
