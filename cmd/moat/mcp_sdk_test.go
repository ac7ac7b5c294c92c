package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/e2e"
	"github.com/moatmesh/moat/internal/npmtest"
	"github.com/moatmesh/moat/node/mcpguard/mcptest"
)

// mcpPolicy grants alice llama and two of the Jira server's tools.
const mcpPolicy = `{
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "mcp": { "jira": { "servedBy": ["tag:gpu"] } },
  "grants": [
    { "src": ["group:ml"], "models": ["llama"] },
    { "src": ["group:ml"], "mcp": ["jira:get_issue", "jira:search_*"] },
  ],
}`

// TestMCPTypeScriptSDK configures an agent as `moat mcp --agent vscode`
// says (URL and the local token) and drives the local endpoint with the
// official MCP TypeScript SDK (testdata/mcp, pinned by its
// package-lock.json): the granted tools are listed and callable, an
// ungranted one is refused by name with moat's message.
func TestMCPTypeScriptSDK(t *testing.T) {
	dir := "testdata/mcp"
	node := npmtest.Install(t, dir)
	f := newMesh(t)
	f.sys.Coord.SavePolicy(t, mcpPolicy)
	f.nodes = append(f.nodes, f.sys.AddNodeWith(t, "tools-1", e2e.NodeOptions{MCP: map[string]string{"jira": mcptest.Jira(t)}}, "llama"))
	f.connect(t)

	type server struct {
		Type    string            `json:"type"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	}
	var jira server
	waitFor(t, "`moat mcp` to list jira", func() bool {
		code, out, _ := run(t, f.dir, "mcp", "--agent", "vscode")
		_, js, _ := strings.Cut(out, "\n") // after "# VS Code: .vscode/mcp.json"
		var cfg struct{ Servers map[string]server }
		if code != 0 || json.Unmarshal([]byte(js), &cfg) != nil {
			return false
		}
		jira = cfg.Servers["jira"]
		return jira.URL != ""
	})
	if jira.Type != "http" || jira.URL != f.endpoint+"/mcp/jira" || !strings.HasPrefix(jira.Headers["Authorization"], "Bearer ") {
		t.Fatalf("moat mcp --agent vscode configured %+v", jira)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	headers, _ := json.Marshal(jira.Headers)
	out := npmtest.Run(t, ctx, node, dir, []string{"MOAT_MCP_URL=" + jira.URL, "MOAT_MCP_HEADERS=" + string(headers)}, "agent.mjs")
	var got struct {
		Tools   []string
		Text    string
		Refused bool
		Message string
	}
	for line := range strings.Lines(out) {
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("script printed %q: %v\n%s", line, err, out)
		}
	}
	if !slices.Equal(got.Tools, []string{"get_issue", "search_issues"}) {
		t.Errorf("tools listed to the TypeScript SDK: %v", got.Tools)
	}
	if got.Text != "Issue OPS-9: printer broken" {
		t.Errorf("get_issue through the TypeScript SDK: %q", got.Text)
	}
	if !got.Refused || !strings.Contains(got.Message, `tool "delete_issue" of MCP server "jira" is not granted to alice@example.com`) {
		t.Errorf("delete_issue through the TypeScript SDK: refused %v, %q", got.Refused, got.Message)
	}
}
