package netmap

import (
	"slices"
	"testing"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// Each viewer is told only its own MCP share of a peer, and two views
// that differ never share a cached peer fragment.
func TestMCPView(t *testing.T) {
	node := &policy.MemberRules{ID: "n1", MCP: &policy.MCPRules{
		Grants: []policy.GrantRule{{ID: "grants[1]"}, {ID: "grants[2]"}},
		Access: []policy.MCPCallerAccess{
			{Caller: "alice", Access: []policy.MCPAccess{{Server: "jira", Tools: []string{"search_*", "get_issue"}, Grant: 0}}},
			{Caller: "bob", Access: []policy.MCPAccess{{Server: "jira", Tools: []string{"get_issue"}, Grant: 1}}},
		},
	}}
	alice := &policy.MemberRules{ID: "alice", MCP: &policy.MCPRules{Uses: []policy.NodeServers{{Node: "n1", Servers: []string{"jira"}}}}}

	va, vb, vc := mcpViewOf(node, "alice"), mcpViewOf(node, "bob"), mcpViewOf(node, "carol")
	if string(va.appendKey(nil)) == string(vb.appendKey(nil)) || len(vc.appendKey(nil)) != 0 {
		t.Fatalf("cache keys: alice %q, bob %q, carol %q", va.appendKey(nil), vb.appendKey(nil), vc.appendKey(nil))
	}
	var wp wire.Peer
	vb.apply(&wp)
	if len(wp.MCPAccess) != 1 || wp.MCPAccess[0].Grant != 1 || !slices.Equal(wp.MCPAccess[0].Tools, []string{"get_issue"}) || wp.MCP != nil {
		t.Fatalf("bob as the node sees him: %+v", wp)
	}
	wp = wire.Peer{}
	mcpViewOf(alice, "n1").apply(&wp)
	if !slices.Equal(wp.MCP, []string{"jira"}) || wp.MCPAccess != nil {
		t.Fatalf("the node as alice sees it: %+v", wp)
	}
	r := withMCPGrants(&wire.NodeRules{}, node.MCP)
	if len(r.MCPGrants) != 2 || r.MCPGrants[1].ID != "grants[2]" {
		t.Fatalf("MCP grants = %+v", r.MCPGrants)
	}
}
