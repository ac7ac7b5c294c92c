package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/standin"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/guard"
)

// Policy is the policy System puts in force: alice@example.com may use
// llama, with MFA within 12 h, and her prompts are audited as hashes.
const Policy = `{
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:ml"], "models": ["llama"], "mfa": "12h", "audit": { "prompts": "hash" } } ],
}`

// System is a coordinator (coordtest: embedded provider, SQLite, a clock
// moved by hand) with Policy in force, and the GPU nodes started on it.
// Everything stops when the test ends.
type System struct {
	Coord *coordtest.Coord
}

// Start starts a coordinator with Policy in force; mod may adjust its
// configuration.
func Start(t testing.TB, mod ...func(*coordinator.Config)) *System {
	t.Helper()
	s := &System{Coord: coordtest.Start(t, mod...)}
	s.Coord.SavePolicy(t, Policy)
	return s
}

// Node is a GPU node tagged tag:gpu, over the userspace netstack on a
// loopback UDP port, in front of its own stand-in inference server.
type Node struct {
	Name     string
	StateDir string
	Port     uint16 // WireGuard UDP port on 127.0.0.1, kept across restarts
	Models   []string

	opts     NodeOptions
	requests atomic.Int64
	upstream string
	stopMu   sync.Mutex // held by Stop: a test's Stop and its cleanup's may overlap
	node     *node.Node
	stop     context.CancelFunc
	done     chan struct{}
}

// NodeOptions adjust a node that AddNodeWith starts.
type NodeOptions struct {
	// Logger receives the node's logs. Default: none.
	Logger *slog.Logger
	// BeforeRun is called with the started node before its Run, at every
	// start, e.g. to add a sink to its member. Default: nothing.
	BeforeRun func(*node.Node)
	// StandinDelay is the stand-in's pause between streamed words.
	// Default: none.
	StandinDelay time.Duration
	// MCP are the MCP servers the node serves (node.Config.MCP).
	// Default: none.
	MCP map[string]string
}

// AddNode enrolls and starts a node called name serving models (each
// answered by the stand-in). It stops when the test ends.
func (s *System) AddNode(t testing.TB, name string, models ...string) *Node {
	t.Helper()
	return s.AddNodeWith(t, name, NodeOptions{}, models...)
}

// AddNodeWith is AddNode with options.
func (s *System) AddNodeWith(t testing.TB, name string, opts NodeOptions, models ...string) *Node {
	t.Helper()
	n := &Node{Name: name, StateDir: t.TempDir(), Port: freeUDPPort(t), Models: models, opts: opts}
	n.upstream = n.countingStandin(t, opts.StandinDelay)
	n.start(t, wire.Secret(s.Coord.EnrollKey(t, "tag:gpu")), s.Coord.URL)
	t.Cleanup(n.Stop)
	return n
}

// countingStandin serves the stand-in through a proxy that counts the
// requests it forwards, and returns the proxy's URL (on 127.0.0.1, so
// the node accepts it as loopback-only).
func (n *Node) countingStandin(t testing.TB, delay time.Duration) string {
	sin, err := standin.Start(0, delay)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sin.Close() })
	u, _ := url.Parse(sin.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // streams pass chunk by chunk
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.requests.Add(1)
		// The request's body is read here, before the proxy sends it on:
		// net/http's server may refuse a body read after the answer's
		// first flush, and the proxy's transport, still checking the
		// body's end when the stand-in answers, then closes its
		// connection in mid-stream (a stream cut the node never made).
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// start starts the node from its state directory; ek and coordinator are
// needed only the first time.
func (n *Node) start(t testing.TB, ek wire.Secret, coordinator string) {
	t.Helper()
	var models []node.Model
	for _, m := range n.Models {
		models = append(models, node.Model{Name: m, Upstream: guard.Upstream{URL: n.upstream, Kind: guard.KindOpenAI}})
	}
	backend := engine.Netstack
	ctx, cancel := context.WithCancel(context.Background())
	nd, err := node.Start(ctx, node.Config{
		Coordinator: coordinator, EnrollKey: ek, StateDir: n.StateDir, Hostname: n.Name, Models: models,
		Backend: &backend, ListenPort: n.Port, Endpoints: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), n.Port)},
		Logger: n.opts.Logger, MCP: n.opts.MCP,
	})
	if err != nil {
		cancel()
		t.Fatalf("start node %s: %v", n.Name, err)
	}
	if n.opts.BeforeRun != nil {
		n.opts.BeforeRun(nd)
	}
	n.node, n.stop, n.done = nd, cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		nd.Run(ctx)
	}()
}

// Stop closes the node, as when its host goes down, and waits for it. It
// is safe to call more than once.
func (n *Node) Stop() {
	n.stopMu.Lock()
	defer n.stopMu.Unlock()
	if n.node == nil {
		return
	}
	n.node.Close()
	n.stop()
	<-n.done
	n.node = nil
}

// Restart stops the node if it runs and starts it again from its state
// directory and on its port, with no enrollment key: a reboot.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	n.Stop()
	n.start(t, "", "")
}

// Node returns the running node (nil after Stop).
func (n *Node) Node() *node.Node { return n.node }

// Requests is how many requests the node's inference server has received.
func (n *Node) Requests() int64 { return n.requests.Load() }

func freeUDPPort(t testing.TB) uint16 {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// ReadChatStream reads an OpenAI chat completion stream (server-sent
// events) to its end and returns the content of each chunk in order, and
// whether it ended with "data: [DONE]".
func ReadChatStream(r io.Reader) (chunks []string, done bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		switch {
		case !ok:
			continue
		case data == "[DONE]":
			done = true
			continue
		}
		var ev struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			return chunks, done, fmt.Errorf("stream event %q: %w", data, err)
		}
		for _, ch := range ev.Choices {
			if ch.Delta.Content != "" {
				chunks = append(chunks, ch.Delta.Content)
			}
		}
	}
	return chunks, done, sc.Err()
}

// StandinChunks are the chunks the stand-in streams for every chat
// completion, in order.
func StandinChunks() []string { return strings.SplitAfter(standin.Answer, " ") }
