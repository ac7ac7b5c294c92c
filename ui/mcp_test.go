package ui

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// The fake's MCPBackend: one declared server with a hostile description,
// one only a node advertises.
func (f *fake) MCPServers(context.Context) ([]MCPServer, error) {
	return []MCPServer{
		{Name: "jira", Description: "<script>alert(1)</script>", Declared: true, Egress: []string{"jira.corp.example:443", "10.2.0.0/16"},
			Grants: []MCPGrant{{Grant: Grant{ID: "grants[3]", Src: []string{"group:eng"}, Terms: []string{"MFA within 12h", "60 requests/min"}}, Tools: []string{"search_*", "get_issue"}}},
			Nodes:  []ModelNode{{ID: "n1", Hostname: "tools-1", Online: true, Allowed: true}},
			Tools:  []MCPTool{{Name: "delete_issue", Refused: 2}, {Name: "get_issue", Allowed: 7}}},
		{Name: "wiki", Nodes: []ModelNode{{ID: "n2", Hostname: "tools-2", Why: "no servedBy tag"}}},
	}, nil
}

func TestMCPPage(t *testing.T) {
	w := serve(New(&fake{viewer: asAdmin}), "GET", "/ui/mcp", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d:\n%s", w.Code, w.Body)
	}
	body := w.Body.String()
	for _, s := range []string{"<code>jira</code>", "&lt;script&gt;", "group:eng may call <code>search_*</code>, <code>get_issue</code>",
		"MFA within 12h", "<code>jira.corp.example:443</code>", "<td><code>delete_issue</code></td><td>0</td><td>2</td>",
		"not in the policy", "not allowed to serve it", `href="/ui/audit?api=mcp"`, `aria-current="page">MCP</a>`} {
		if !strings.Contains(body, s) {
			t.Errorf("/ui/mcp lacks %q:\n%s", s, body)
		}
	}
	if strings.Contains(body, "<script>alert") {
		t.Error("/ui/mcp shows the description unescaped")
	}
	for _, v := range []*Viewer{asMember, asAuditor} {
		if w := serve(New(&fake{viewer: v}), "GET", "/ui/mcp", nil); w.Code != http.StatusForbidden {
			t.Errorf("/ui/mcp as %s: %d, want 403", v.Role, w.Code)
		}
	}
}

func TestAuditFilterMCP(t *testing.T) {
	f := &auditFake{fake: fake{viewer: asAdmin}, recs: []AuditRecord{{ID: "r1", API: "mcp", MCP: "jira:get_issue", Decision: "allow"}}}
	w := serve(New(f), "GET", "/ui/audit?api=mcp", nil)
	if w.Code != http.StatusOK || len(f.asked) != 1 || f.asked[0].API != "mcp" {
		t.Fatalf("status %d, asked %+v", w.Code, f.asked)
	}
	for _, s := range []string{`<option value="mcp" selected>`, "<code>mcp:jira:get_issue</code>"} {
		if !strings.Contains(w.Body.String(), s) {
			t.Errorf("/ui/audit?api=mcp lacks %q", s)
		}
	}
	if serve(New(f), "GET", "/ui/audit?api=other", nil); f.asked[1].API != "" {
		t.Errorf("api=other filtered on %q, want no filter", f.asked[1].API)
	}
}
