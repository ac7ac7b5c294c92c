package mcpguard_test

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/moatmesh/moat/mesh/engine/enginetest"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/guard"
	"github.com/moatmesh/moat/node/mcpguard"
	"github.com/moatmesh/moat/node/mcpguard/mcptest"
)

// sink keeps audit records in memory.
type sink struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (s *sink) Append(r *audit.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs = append(s.recs, *r)
	return nil
}

// calls returns the records of tools/call requests, waiting until there
// are n.
func (s *sink) calls(t *testing.T, n int) []audit.Record {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		var out []audit.Record
		for _, r := range s.recs {
			if r.MCP != nil && r.MCP.Method == "tools/call" {
				out = append(out, r)
			}
		}
		s.mu.Unlock()
		if len(out) >= n || time.Now().After(deadline) {
			if len(out) != n {
				t.Fatalf("%d tools/call records, want %d: %+v", len(out), n, out)
			}
			return out
		}
		time.Sleep(5 * time.Millisecond) // polling the sink, not waiting for time to pass
	}
}

// world is a node serving the jira MCP server behind the real guard over
// a userspace WireGuard mesh, and two callers: alice (search_* and
// get_issue, injection blocked) and bob (get_issue, injection flagged).
type world struct {
	alice, bob *enginetest.Member
	url        string // the jira server through the node's guard
	audit      *sink
}

func newWorld(t *testing.T) *world {
	return newWorldWith(t, mcpguard.Config{Servers: map[string]string{"jira": mcptest.Jira(t)}})
}

// newWorldWith is newWorld with cfg naming the jira server.
func newWorldWith(t *testing.T, cfg mcpguard.Config) *world {
	now := time.Now()
	w := &world{audit: &sink{}}
	node := enginetest.New(t, 1)
	w.alice, w.bob = enginetest.New(t, 2), enginetest.New(t, 3)
	nodeID := wire.Identity{Tags: []string{"tag:tools"}, DeviceID: "n1"}
	aliceID := wire.Identity{UserID: "u-alice", Login: "alice@example.com", DeviceID: "d2", LastMFA: now, Expiry: now.Add(time.Hour)}
	bobID := wire.Identity{UserID: "u-bob", Login: "bob@example.com", DeviceID: "d3", LastMFA: now, Expiry: now.Add(time.Hour)}
	cfg.NodeName, cfg.Audit, cfg.AuditKey = "tools1", w.audit, []byte("k")
	mg, err := mcpguard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mg.Close)
	g, err := guard.New(guard.Config{MCP: mg})
	if err != nil {
		t.Fatal(err)
	}
	alicePeer, bobPeer := w.alice.Peer(aliceID), w.bob.Peer(bobID)
	alicePeer.MCPAccess = []wire.MCPAccess{{Server: "jira", Tools: []string{"search_*", "get_issue"}, Grant: 0}}
	bobPeer.MCPAccess = []wire.MCPAccess{{Server: "jira", Tools: []string{"get_issue"}, Grant: 1}}
	nm := node.NetMap(1, nodeID, alicePeer, bobPeer)
	nm.Rules = &wire.NodeRules{MCPGrants: []wire.GrantRule{
		{ID: "grants[0]", MFA: wire.Duration(12 * time.Hour), Limits: wire.Limits{RPM: 100, Concurrency: 4},
			Guard: wire.GuardRules{Injection: "block", Redact: []string{"secrets"}}, Audit: wire.AuditRules{Prompts: "hash"}},
		{ID: "grants[1]", Guard: wire.GuardRules{Injection: "flag"}},
	}}
	for _, err := range []error{node.Eng.Reconfig(nm), g.SetNetMap(nm), mg.SetNetMap(nm),
		w.alice.Eng.Reconfig(w.alice.NetMap(1, aliceID, node.Peer(nodeID))), w.bob.Eng.Reconfig(w.bob.NetMap(1, bobID, node.Peer(nodeID)))} {
		if err != nil {
			t.Fatal(err)
		}
	}
	ln, err := node.Eng.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	t.Cleanup(func() { g.Close() })
	w.url = "http://" + netip.AddrPortFrom(node.Addrs[0], 80).String() + "/mcp/jira"
	return w
}

// connect starts an MCP session from m with the official Go SDK client.
func (w *world) connect(t *testing.T, m *enginetest.Member) *mcp.ClientSession {
	return mcptest.Connect(t, w.url, &http.Client{Transport: &http.Transport{DialContext: m.Eng.Dial}})
}

func TestToolsThroughTheGuard(t *testing.T) {
	w := newWorld(t)
	alice := w.connect(t, w.alice)
	if got := mcptest.Tools(t, alice); got != "get_issue,search_issues" {
		t.Errorf("alice's tools/list = %s, want get_issue,search_issues", got)
	}
	out, err := mcptest.Call(alice, "search_issues", map[string]any{"query": "printer"})
	if err != nil || out != "found 2 issues for printer" {
		t.Fatalf("search_issues = %q, %v", out, err)
	}
	_, err = mcptest.Call(alice, "delete_issue", map[string]any{"id": "OPS-1"})
	if err == nil || !strings.Contains(err.Error(), `tool "delete_issue" of MCP server "jira" is not granted to alice@example.com`) {
		t.Fatalf("delete_issue: %v, want a refusal saying it is not granted", err)
	}
	_, err = mcptest.Call(alice, "get_issue", map[string]any{"id": "EVIL-1"})
	if err == nil || !strings.Contains(err.Error(), "the tool's result was withheld: blocked by guard rule injection-override") {
		t.Fatalf("poisoned get_issue for alice: %v, want the result withheld", err)
	}
	bob := w.connect(t, w.bob)
	if got := mcptest.Tools(t, bob); got != "get_issue" {
		t.Errorf("bob's tools/list = %s, want get_issue", got)
	}
	out, err = mcptest.Call(bob, "get_issue", map[string]any{"id": "EVIL-1"})
	if err != nil || !strings.Contains(out, mcptest.Poison) {
		t.Fatalf("poisoned get_issue for bob (flag) = %q, %v; want it passed and flagged", out, err)
	}
	if _, err = mcptest.Call(bob, "search_issues", map[string]any{"query": "x"}); err == nil || !strings.Contains(err.Error(), "not granted to bob@example.com") {
		t.Fatalf("bob's search_issues: %v, want refused", err)
	}

	// Records are written once each answer has gone out, so they may
	// land out of order: match them by caller and tool.
	recs := w.audit.calls(t, 5)
	want := []struct{ login, tool, decision, reason, grant, finding string }{
		{"alice@example.com", "search_issues", "allow", "", "grants[0]", ""},
		{"alice@example.com", "delete_issue", "deny", "not_granted", "", ""},
		{"alice@example.com", "get_issue", "deny", "result_blocked", "grants[0]", "injection-override/block"},
		{"bob@example.com", "get_issue", "allow", "", "grants[1]", "injection-override/flag"},
		{"bob@example.com", "search_issues", "deny", "not_granted", "", ""},
	}
	for _, wt := range want {
		i := slices.IndexFunc(recs, func(r audit.Record) bool { return r.Login == wt.login && r.MCP.Tool == wt.tool })
		if i < 0 {
			t.Errorf("no record of %s calling %s", wt.login, wt.tool)
			continue
		}
		r := recs[i]
		if r.Decision != wt.decision || r.Reason != wt.reason || r.Grant != wt.grant || r.MCP.Server != "jira" || r.API != "mcp" {
			t.Errorf("record of %s calling %s = %+v %+v, want %+v", wt.login, wt.tool, r, *r.MCP, wt)
		}
		if !strings.HasPrefix(r.MCP.ArgsHash, "hmac-sha256:") {
			t.Errorf("record of %s calling %s has no argument hash: %+v", wt.login, wt.tool, *r.MCP)
		}
		if wt.decision == "allow" && r.MCP.ResultBytes == 0 {
			t.Errorf("record of %s calling %s has no result size", wt.login, wt.tool)
		}
		if got := findings(r); got != wt.finding {
			t.Errorf("record of %s calling %s: findings %q, want %q", wt.login, wt.tool, got, wt.finding)
		}
	}
}

func findings(r audit.Record) string {
	var out []string
	for _, f := range r.Findings {
		if f.Category == "injection" && !strings.Contains(strings.Join(out, ","), f.Rule) {
			out = append(out, f.Rule+"/"+f.Action)
		}
	}
	if len(out) > 1 {
		out = out[:1]
	}
	return strings.Join(out, ",")
}

// raw posts a JSON-RPC message from m with an optional session ID.
func (w *world) raw(t *testing.T, m *enginetest.Member, session, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", w.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	resp, err := m.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

func TestSessionBoundToCaller(t *testing.T) {
	w := newWorld(t)
	alice := w.connect(t, w.alice)
	id := alice.ID()
	if id == "" {
		t.Fatal("the server issued no session ID")
	}
	list := `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`
	if code, body := w.raw(t, w.bob, id, list); code != http.StatusForbidden || !strings.Contains(body, "session_hijack") {
		t.Fatalf("bob presenting alice's session: %d %s, want 403 session_hijack", code, body)
	}
	if code, body := w.raw(t, w.alice, "made-up", list); code != http.StatusNotFound || !strings.Contains(body, "session_unknown") {
		t.Fatalf("unknown session: %d %s, want 404", code, body)
	}
	if code, body := w.raw(t, w.alice, id, list); code != http.StatusOK || !strings.Contains(body, "search_issues") {
		t.Fatalf("alice in her own session: %d %s", code, body)
	}
	for _, m := range []string{"resources/list", "prompts/get"} {
		code, body := w.raw(t, w.alice, id, fmt.Sprintf(`{"jsonrpc":"2.0","id":8,"method":%q}`, m))
		if code != http.StatusOK || !strings.Contains(body, "not_governed") {
			t.Errorf("%s: %d %s, want a JSON-RPC refusal", m, code, body)
		}
	}
	if code, body := w.raw(t, w.alice, id, `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`); code != http.StatusBadRequest || !strings.Contains(body, "batches") {
		t.Errorf("batch: %d %s, want 400", code, body)
	}
}
