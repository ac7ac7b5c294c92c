package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/mcpguard/mcptest"
)

// mcpPolicy grants alice the Jira server's read tools, with injection in
// results blocked.
const mcpPolicy = `{
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "mcp": { "jira": { "servedBy": ["tag:gpu"] }, "wide": { "servedBy": ["tag:gpu"] } },
  "grants": [
    { "src": ["group:ml"], "models": ["llama"] },
    { "src": ["group:ml"], "mcp": ["jira:search_*", "jira:get_issue", "wide:*"], "mfa": "12h",
      "guard": { "injection": "block" }, "audit": { "prompts": "hash" } },
  ],
  "tests": [ { "src": "alice@example.com", "accept": ["mcp:jira:get_issue"], "deny": ["mcp:jira:delete_issue"] } ],
}`

// TestMCPWholeSystem runs an MCP tool server (the official Go SDK) on a
// node, grants it in the coordinator's policy and calls it from alice's
// signed-in device with the official Go SDK client, over WireGuard and
// through the guard; the calls are audited at the coordinator.
func TestMCPWholeSystem(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sys := Start(t)
	coord := sys.Coord
	coord.SavePolicy(t, mcpPolicy)
	// "wide" listens on every interface, so the node neither serves nor
	// advertises it, though the policy would grant it.
	wide, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	go http.Serve(wide, http.NotFoundHandler())
	t.Cleanup(func() { wide.Close() })
	wideURL := fmt.Sprintf("http://127.0.0.1:%d/mcp", wide.Addr().(*net.TCPAddr).Port)
	n := sys.AddNodeWith(t, "tools-1", NodeOptions{MCP: map[string]string{"jira": mcptest.Jira(t), "wide": wideURL}}, "llama").Node()

	dir := SignInDevice(t, ctx, coord, coord.AddPerson(t, "alice@example.com", false), "laptop", coord.URL, "")
	cl := StartClient(t, client.Config{StateDir: string(dir)})
	var nodeAddr netip.Addr
	if WaitNetMap(cl, 10*time.Second, func(nm *wire.NetMap) bool {
		for _, p := range nm.Peers {
			if string(p.Identity.DeviceID) == string(n.DeviceID()) && slices.Equal(p.MCP, []string{"jira"}) && slices.Equal(p.Models, []string{"llama"}) {
				nodeAddr = p.Addresses[0]
			}
		}
		return nodeAddr.IsValid()
	}) == nil {
		t.Fatal("alice's device never saw the node serve jira (and not wide) over MCP, and llama as its only model")
	}

	hc := &http.Client{Transport: &http.Transport{DialContext: cl.Dial}}
	cs := mcptest.Connect(t, "http://"+netip.AddrPortFrom(nodeAddr, 80).String()+"/mcp/jira", hc)
	if got := mcptest.Tools(t, cs); got != "get_issue,search_issues" {
		t.Errorf("tools/list through the mesh = %s, want get_issue,search_issues", got)
	}
	if out, err := mcptest.Call(cs, "get_issue", map[string]any{"id": "OPS-7"}); err != nil || out != "Issue OPS-7: printer broken" {
		t.Fatalf("get_issue = %q, %v", out, err)
	}
	if _, err := mcptest.Call(cs, "delete_issue", map[string]any{"id": "OPS-7"}); err == nil || !strings.Contains(err.Error(), "not granted to alice@example.com") {
		t.Fatalf("delete_issue: %v, want refused", err)
	}
	if _, err := mcptest.Call(cs, "get_issue", map[string]any{"id": "EVIL-1"}); err == nil || !strings.Contains(err.Error(), "withheld") {
		t.Fatalf("poisoned get_issue: %v, want the result withheld", err)
	}

	// The same through the client's local endpoint, as agents use it:
	// `moat mcp` points them at Endpoint()/mcp/NAME with the local token.
	st, err := client.FetchStatus(ctx, dir)
	if err != nil || !slices.Equal(st.MCP, []string{"jira"}) {
		t.Fatalf("status MCP = %v, %v; want [jira]", st.MCP, err)
	}
	tok, err := dir.Token(true)
	if err != nil {
		t.Fatal(err)
	}
	local := mcptest.Connect(t, cl.Endpoint()+"/mcp/jira", &http.Client{Transport: bearer{tok}})
	if out, err := mcptest.Call(local, "search_issues", map[string]any{"query": "vpn"}); err != nil || out != "found 2 issues for vpn" {
		t.Fatalf("search_issues through the local endpoint = %q, %v", out, err)
	}
	if got := mcptest.Tools(t, local); got != "get_issue,search_issues" {
		t.Errorf("tools/list through the local endpoint = %s", got)
	}

	// The node's spool ships the call records to the coordinator.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := coord.Admin(t, "GET", "/audit?login=alice@example.com", "")
		if strings.Count(out, `"tool":"`) >= 4 && strings.Contains(out, `"tool":"delete_issue"`) && strings.Contains(out, `"reason":"result_blocked"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the coordinator did not get the four tools/call records: %s", out)
		}
		time.Sleep(200 * time.Millisecond) // polling the coordinator until the shipper's batch lands
	}
}

// bearer sends the local API token, as agents configured by `moat mcp` do.
type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}
