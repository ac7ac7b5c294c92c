package router

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/engine/enginetest"
	"github.com/moatmesh/moat/mesh/wire"
)

// member is one netstack engine in a test mesh.
type member struct {
	*enginetest.Member
	name   string
	models []string
	apis   map[string]string // model → API family, when not OpenAI's
}

// newMember makes member n serving models: "llama" with OpenAI's API,
// "llama@ollama" with Ollama's.
func newMember(t *testing.T, n int, name string, models ...string) *member {
	t.Helper()
	m := &member{Member: enginetest.New(t, n), name: name}
	for _, spec := range models {
		model, api, ok := strings.Cut(spec, "@")
		m.models = append(m.models, model)
		if ok {
			if m.apis == nil {
				m.apis = map[string]string{}
			}
			m.apis[model] = api
		}
	}
	if err := m.Eng.Reconfig(m.netmap()); err != nil { // addresses, so it can listen
		t.Fatal(err)
	}
	return m
}

func (m *member) id() wire.Identity {
	return wire.Identity{DeviceID: wire.DeviceID(m.name), DeviceName: m.name}
}

func (m *member) asPeer() wire.Peer {
	p := m.Peer(m.id())
	p.Models, p.APIs = m.models, m.apis
	return p
}

func (m *member) netmap(peers ...*member) *wire.NetMap {
	nm := m.NetMap(1, wire.Identity{})
	for _, p := range peers {
		nm.Peers = append(nm.Peers, p.asPeer())
	}
	return nm
}

// guard is a stand-in for a node's guard: it records what it saw and
// answers with handle.
type guard struct {
	name  string
	mu    sync.Mutex
	seen  []*http.Request
	conns atomic.Int64 // connections accepted
	stop  func() error // closes its listener and connections
}

func (g *guard) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.seen)
}

func (g *guard) last() *http.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seen[len(g.seen)-1]
}

// serve runs handle (default: "NAME: BODY") on m's mesh port 80.
func (m *member) serve(t *testing.T, handle http.HandlerFunc) *guard {
	t.Helper()
	g := &guard{name: m.name}
	ln, err := m.Eng.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.seen = append(g.seen, r)
		g.mu.Unlock()
		if handle != nil {
			handle(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s: %s", m.name, b)
	}), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			g.conns.Add(1)
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	g.stop = srv.Close
	return g
}

// testMesh is a client engine with a router, and nodes.
type testMesh struct {
	client *member
	nodes  []*member
	router *Router
	srv    *httptest.Server
}

// newMesh connects a client to nodes and starts its router behind a
// loopback HTTP server.
func newMesh(t *testing.T, mod func(*Config), nodes ...*member) *testMesh {
	t.Helper()
	m := &testMesh{client: newMember(t, 1, "laptop"), nodes: nodes}
	for _, n := range nodes {
		if err := n.Eng.Reconfig(n.netmap(m.client)); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.client.Eng.Reconfig(m.client.netmap(nodes...)); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Dialer: m.client.Eng, ConnectTimeout: 2 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.SetNetMap(m.client.netmap(nodes...))
	m.router = r
	m.handshake(t, nodes...)
	m.srv = httptest.NewServer(r)
	t.Cleanup(func() { m.srv.Close(); r.Close() })
	return m
}

// handshake makes the client's first contact with each of nodes with a
// generous deadline, so that no test spends its Config.ConnectTimeout on
// it (a handshake takes over a second under the race detector on a
// loaded machine). It connects to a port no guard listens on: the node's
// reset proves the session, and no guard counts the connection.
func (m *testMesh) handshake(t *testing.T, nodes ...*member) {
	t.Helper()
	for _, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		c, err := m.client.Eng.Dial(ctx, "tcp", netip.AddrPortFrom(n.Addrs[0], 9).String())
		cancel()
		if err == nil {
			c.Close()
		} else if !strings.Contains(err.Error(), "refused") { // netstack's "connection was refused"
			t.Fatalf("first contact with %s: %v", n.name, err)
		}
	}
}

// post sends a JSON body to path and returns status and body.
func (m *testMesh) post(t *testing.T, path, body string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, m.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(t, req)
}

func (m *testMesh) get(t *testing.T, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, m.srv.URL+path, nil)
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
