package mcpguard

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
)

func TestLimiter(t *testing.T) {
	l := newLimiter()
	now := time.Unix(1000, 0)
	var releases []func()
	for i := range 2 {
		rel, by := l.acquire("k", 2, 0, now)
		if by != "" {
			t.Fatalf("call %d refused by %s", i, by)
		}
		releases = append(releases, rel)
	}
	if _, by := l.acquire("k", 2, 0, now); by != "rpm" {
		t.Fatalf("third call in the minute refused by %q, want rpm", by)
	}
	later, by := l.acquire("k", 2, 0, now.Add(30*time.Second))
	if by != "" {
		t.Fatalf("a call half a minute later (one call earned back) refused by %q", by)
	}
	releases = append(releases, later)
	rel, by := l.acquire("c", 0, 1, now)
	if by != "" {
		t.Fatal(by)
	}
	if _, by := l.acquire("c", 0, 1, now); by != "concurrency" {
		t.Fatalf("second call in flight refused by %q, want concurrency", by)
	}
	rel()
	if _, by := l.acquire("c", 0, 1, now); by != "" {
		t.Fatalf("a call after the first ended refused by %q", by)
	}
	for _, r := range releases {
		r()
	}
	l.keep(map[string]bool{"c": true})
	if _, ok := l.mu.counts["k"]; ok {
		t.Error("the counts of a caller gone from the netmap were kept")
	}
	if _, ok := l.mu.counts["c"]; !ok {
		t.Error("the counts of a caller still in the netmap were dropped")
	}
}

func TestDecideMFA(t *testing.T) {
	now := time.Unix(100000, 0)
	strict := &grant{}
	strict.rule.ID, strict.rule.MFA = "grants[0]", 3600e9
	loose := &grant{}
	loose.rule.ID = "grants[1]"
	c := &caller{id: wire.Identity{LastMFA: now.Add(-2 * time.Hour)}, access: map[string][]access{
		"jira": {{tools: []string{"get_*"}, grant: strict}, {tools: []string{"get_issue"}, grant: loose}},
	}}
	if g, named := c.decide("jira", "get_issue", now); !named || g != loose {
		t.Errorf("stale MFA, get_issue: grant %v named %v, want the grant without mfa", g, named)
	}
	if g, named := c.decide("jira", "get_user", now); !named || g != nil {
		t.Errorf("stale MFA, get_user: grant %v named %v, want named but refused (mfa)", g, named)
	}
	c.id.LastMFA = now.Add(-time.Minute)
	if g, _ := c.decide("jira", "get_user", now); g != strict {
		t.Errorf("fresh MFA, get_user: grant %v, want the strict one", g)
	}
	if _, named := c.decide("jira", "delete_issue", now); named {
		t.Error("delete_issue is named by no grant")
	}
	if _, named := c.decide("wiki", "get_issue", now); named {
		t.Error("a server with no access entries")
	}
}

// TestRefusals checks the refusals that need no server: who is asking,
// what they ask for, and how much.
func TestRefusals(t *testing.T) {
	now := time.Now()
	recs := &memSink{}
	g, err := New(Config{Servers: map[string]string{"jira": "http://127.0.0.1:1/mcp"}, Audit: recs, MaxBodyBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := key.NewPrivate()
	peer := func(addr string, id wire.Identity, servers ...string) wire.Peer {
		p := wire.Peer{Key: priv.Public(), Addresses: []netip.Addr{netip.MustParseAddr(addr)}, Identity: id}
		for _, s := range servers {
			p.MCPAccess = append(p.MCPAccess, wire.MCPAccess{Server: s, Tools: []string{"*"}})
		}
		return p
	}
	nm := &wire.NetMap{Seq: 1, Rules: &wire.NodeRules{MCPGrants: []wire.GrantRule{{ID: "grants[0]"}}}, Peers: []wire.Peer{
		peer("100.64.0.2", wire.Identity{Login: "alice@example.com", Expiry: now.Add(time.Hour)}, "jira"),
		peer("100.64.0.3", wire.Identity{Login: "old@example.com", Expiry: now.Add(-time.Hour)}, "jira"),
		peer("100.64.0.4", wire.Identity{Login: "bob@example.com"}),
	}}
	if err := g.SetNetMap(nm); err != nil {
		t.Fatal(err)
	}
	list := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	for _, tt := range []struct {
		name, from, method, path, body string
		status                         int
		reason                         string
	}{
		{"unknown caller", "100.64.0.9:5000", "POST", "/mcp/jira", list, 403, "unknown_caller"},
		{"expired key", "100.64.0.3:5000", "POST", "/mcp/jira", list, 401, "expired"},
		{"server not granted", "100.64.0.4:5000", "POST", "/mcp/jira", list, 403, "not_granted"},
		{"unknown server", "100.64.0.2:5000", "POST", "/mcp/wiki", list, 404, "not_found"},
		{"too large", "100.64.0.2:5000", "POST", "/mcp/jira", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + strings.Repeat("x", 64) + `"}}`, 413, "too_large"},
		{"not JSON-RPC", "100.64.0.2:5000", "POST", "/mcp/jira", `{"id":1}`, 400, "invalid"},
		{"call without id", "100.64.0.2:5000", "POST", "/mcp/jira", `{"jsonrpc":"2.0","method":"tools/call"}`, 400, "invalid"},
		{"method", "100.64.0.2:5000", "PUT", "/mcp/jira", list, 405, "method"},
		{"server down", "100.64.0.2:5000", "POST", "/mcp/jira", list, 502, "upstream"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://node"+tt.path, strings.NewReader(tt.body))
			r.RemoteAddr = tt.from
			w := httptest.NewRecorder()
			g.ServeHTTP(w, r)
			if w.Code != tt.status || !strings.Contains(w.Body.String(), `"reason":"`+tt.reason+`"`) {
				t.Errorf("%d %s, want %d with reason %s", w.Code, w.Body, tt.status, tt.reason)
			}
			last := recs.recs[len(recs.recs)-1]
			if last.Reason != tt.reason || last.Status != tt.status || last.Decision == audit.DecisionAllow {
				t.Errorf("audit record %+v, want a refusal with reason %s", last, tt.reason)
			}
		})
	}
}

type memSink struct{ recs []audit.Record }

func (m *memSink) Append(r *audit.Record) error { m.recs = append(m.recs, *r); return nil }

func TestNewRefusesRemoteServers(t *testing.T) {
	for _, u := range []string{"http://10.0.0.5:80/mcp", "https://127.0.0.1:1/mcp", "stdio:/bin/x"} {
		if _, err := New(Config{Servers: map[string]string{"x": u}}); err == nil {
			t.Errorf("New accepted %s", u)
		}
	}
}
