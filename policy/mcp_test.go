package policy

import (
	"os"
	"strings"
	"testing"
)

const mcpDefs = `
  "groups": { "group:eng": ["alice@example.com"] },
  "tagOwners": { "tag:tools": [] },
  "mcp": { "jira": { "servedBy": ["tag:tools"] } },
`

func readMCPPolicy(t *testing.T) *Policy {
	t.Helper()
	src, err := os.ReadFile("testdata/mcp.hujson")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Check("mcp.hujson", src)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return p
}

func TestMCPParse(t *testing.T) {
	p := readMCPPolicy(t)
	if len(p.MCP) != 1 || p.MCP[0].Name != "jira" || p.MCP[0].ServedBy[0] != "tag:tools" || p.MCP[0].Description != "Jira over MCP" {
		t.Fatalf("MCP = %+v", p.MCP)
	}
	g := p.Grants[0]
	if strings.Join(g.MCP, ",") != "jira:search_*,jira:get_issue" || g.Limits.RPM != 60 || g.Limits.Concurrency != 2 || g.MFA == 0 {
		t.Fatalf("grants[0] = %+v", g)
	}
}

func TestMCPParseErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"no servedBy", `{"mcp": {"jira": {}}}`, `1:10: mcp server "jira" has no servedBy`},
		{"bad server name", `{"mcp": {"ji ra": {}}}`, `1:10: "ji ra" is not a valid MCP server name`},
		{"unknown key", `{"tagOwners": {"tag:tools": []}, "mcp": {"jira": {"servedBy": ["tag:tools"], "url": "x"}}}`, `unknown key "url" in mcp server "jira"`},
		{"egress without port", `{"tagOwners": {"tag:tools": []}, "mcp": {"jira": {"servedBy": ["tag:tools"], "egress": ["jira.corp.example"]}}}`,
			`1:89: mcp server "jira".egress[0]: "jira.corp.example" is not an egress destination; write HOST:PORT (e.g. "jira.corp.example:443"), an IP address or a network (e.g. "10.2.0.0/16")`},
		{"egress host bits", `{"tagOwners": {"tag:tools": []}, "mcp": {"jira": {"servedBy": ["tag:tools"], "egress": ["10.2.3.4/16"]}}}`, `"10.2.3.4/16" has host bits set; write the network, 10.2.0.0/16`},
		{"egress bad host", `{"tagOwners": {"tag:tools": []}, "mcp": {"jira": {"servedBy": ["tag:tools"], "egress": ["jira_corp:443"]}}}`, `"jira_corp:443": "jira_corp" is neither an IP address nor a DNS name`},
		{"egress port 0", `{"tagOwners": {"tag:tools": []}, "mcp": {"jira": {"servedBy": ["tag:tools"], "egress": ["jira.corp.example:0"]}}}`, `is not an egress destination`},
		{"pattern without tool", `{` + mcpDefs + `"grants": [{"src": ["group:eng"], "mcp": ["jira"]}]}`, `5:43: grants[0].mcp[0]: "jira" is not an MCP tool pattern; write SERVER:TOOL`},
		{"unknown server", `{` + mcpDefs + `"grants": [{"src": ["group:eng"], "mcp": ["confluence:*"]}]}`, `5:43: grants[0].mcp[0]: unknown MCP server "confluence"; declare it under "mcp"`},
		{"bad tool glob", `{` + mcpDefs + `"grants": [{"src": ["group:eng"], "mcp": ["jira:a b"]}]}`, `is not an MCP tool pattern`},
		{"token limits on MCP", `{` + mcpDefs + `"grants": [{"src": ["group:eng"], "mcp": ["jira:*"], "limits": {"tpm": 5, "maxTokens": 9}}]}`, `5:12: grants[0] grants MCP tools only and sets limits "maxTokens", "tpm", which count model tokens`},
		{"empty mcp", `{` + mcpDefs + `"grants": [{"src": ["group:eng"], "mcp": []}]}`, `grants[0].mcp`},
		{"test target glob", `{` + mcpDefs + `"tests": [{"src": "alice@example.com", "accept": ["mcp:jira:*"]}]}`, `5:51: tests[0].accept[0]: "mcp:jira:*" is not an MCP target`},
		{"test target unknown server", `{` + mcpDefs + `"tests": [{"src": "alice@example.com", "accept": ["mcp:wiki:x"]}]}`, `5:51: tests[0].accept[0]: unknown MCP server "wiki"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("p.hujson", []byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse error\n got: %v\nwant: …%s…", err, tt.want)
			}
		})
	}
}

func TestMCPTestsFail(t *testing.T) {
	src := `{` + mcpDefs + `"grants": [{"src": ["group:eng"], "mcp": ["jira:search_*"]}],
"tests": [{"src": "alice@example.com", "accept": ["mcp:jira:get_issue"], "deny": ["mcp:jira:search_all"]}]}`
	_, err := Check("p.hujson", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "should be allowed mcp:jira:get_issue") || !strings.Contains(err.Error(), "should be denied mcp:jira:search_all but is allowed by grants[0]") {
		t.Fatalf("Check = %v", err)
	}
}

func TestMCPExplain(t *testing.T) {
	p := readMCPPolicy(t)
	e, err := p.Explain(Identity{Login: "alice@example.com"}, "mcp:jira:search_issues")
	if err != nil || !e.Allowed || e.Grant.ID() != "grants[0]" {
		t.Fatalf("Explain = %+v, %v", e, err)
	}
	if s := e.String(); !strings.Contains(s, "mfa within 12h") || !strings.Contains(s, "older than 12h: denied") {
		t.Errorf("explanation:\n%s", s)
	}
	e, err = p.Explain(Identity{Login: "bob@example.com"}, "mcp:jira:search_issues")
	if err != nil || e.Allowed || !strings.Contains(e.String(), "covers mcp:jira:search_issues for group:eng") || !strings.Contains(e.String(), "covers only mcp:jira:get_issue") {
		t.Fatalf("Explain(bob) = %v, %v", e, err)
	}
	if _, err := p.Explain(Identity{Login: "bob@example.com"}, "mcp:wiki:x"); err == nil {
		t.Fatal("Explain of an unknown server did not fail")
	}
}

func TestMCPCompile(t *testing.T) {
	p := readMCPPolicy(t)
	c, err := p.Compile([]Member{
		{ID: "alice", Identity: Identity{Login: "alice@example.com"}},
		{ID: "bob", Identity: Identity{Login: "bob@example.com"}},
		{ID: "carol", Identity: Identity{Login: "carol@example.com"}},
		{ID: "tools", Identity: Identity{Tags: []string{"tag:tools"}}, MCP: []string{"jira", "wiki"}},
		{ID: "rogue", Identity: Identity{Tags: []string{"tag:other"}}, MCP: []string{"jira"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	n := c.Member("tools").MCP
	if n == nil || strings.Join(n.Serves, ",") != "jira" || strings.Join(n.Refused, ",") != "wiki" {
		t.Fatalf("tools MCP = %+v", n)
	}
	if len(n.Grants) != 2 || n.Grants[0].ID != "grants[0]" || n.Grants[0].Limits.RPM != 60 || n.Grants[1].ID != "grants[1]" {
		t.Fatalf("grants = %+v", n.Grants)
	}
	if len(n.Access) != 2 || n.Access[0].Caller != "alice" || n.Access[1].Caller != "bob" {
		t.Fatalf("access = %+v", n.Access)
	}
	if a := n.Access[1].Access; len(a) != 1 || a[0].Server != "jira" || strings.Join(a[0].Tools, ",") != "get_issue" || a[0].Grant != 1 {
		t.Fatalf("bob's access = %+v", a)
	}
	alice := c.Member("alice")
	if alice.MCP == nil || len(alice.MCP.Uses) != 1 || alice.MCP.Uses[0].Node != "tools" || alice.MCP.Uses[0].Servers[0] != "jira" {
		t.Fatalf("alice MCP = %+v", alice.MCP)
	}
	if !contains(alice.Peers, "tools") || contains(alice.Peers, "rogue") {
		t.Fatalf("alice peers = %v", alice.Peers)
	}
	if c.Member("carol").MCP != nil || len(c.Member("carol").Peers) != 0 {
		t.Fatalf("carol got %+v", c.Member("carol"))
	}
	if r := c.Member("rogue").MCP; r == nil || len(r.Serves) != 0 || r.Refused[0] != "jira" {
		t.Fatalf("rogue MCP = %+v", r)
	}
}

func TestMCPToolMatch(t *testing.T) {
	for _, tt := range []struct {
		pat, tool string
		want      bool
	}{{"search_*", "search_issues", true}, {"search_*", "get_issue", false}, {"*", "x", true}, {"get_issue", "get_issue", true}, {"get_issue", "get_issues", false}} {
		if got := MCPToolMatch(tt.pat, tt.tool); got != tt.want {
			t.Errorf("MCPToolMatch(%q, %q) = %v", tt.pat, tt.tool, got)
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
