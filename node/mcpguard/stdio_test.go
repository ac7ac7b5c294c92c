package mcpguard_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/mcpguard"
	"github.com/moatmesh/moat/node/mcpguard/mcptest"
	"github.com/moatmesh/moat/node/mcpstdio"
)

// TestMain lets this test binary be the launcher of stdio servers and
// the stdio Jira server itself.
func TestMain(m *testing.M) {
	mcpstdio.LaunchMain()
	mcptest.StdioMain()
	os.Exit(m.Run())
}

// TestStdioThroughTheGuard serves the Go SDK's stdio Jira server, run by
// the node's supervisor, through the real guard: the grants apply as for
// a Streamable HTTP server (listed, callable, refused by name, audited).
func TestStdioThroughTheGuard(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (the server's own cgroup); `make test` runs it as root")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, _, err := mcpstdio.MakeCgroup(fmt.Sprintf("jira-guard-%d", time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := mcpstdio.New(mcpstdio.Config{Command: mcpstdio.Command{Name: "jira", Path: self, Args: []string{mcptest.StdioFlag}}, Cgroup: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w := newWorldWith(t, mcpguard.Config{Local: map[string]http.Handler{"jira": s}})

	alice := w.connect(t, w.alice)
	if got := mcptest.Tools(t, alice); got != "get_issue,search_issues" {
		t.Errorf("alice's tools/list = %s, want get_issue,search_issues", got)
	}
	if got, err := mcptest.Call(alice, "get_issue", map[string]any{"id": "OPS-1"}); err != nil || got != "Issue OPS-1: printer broken" {
		t.Errorf("get_issue = %q, %v", got, err)
	}
	_, err = mcptest.Call(alice, "delete_issue", map[string]any{"id": "OPS-1"})
	if err == nil || !strings.Contains(err.Error(), `tool "delete_issue" of MCP server "jira" is not granted`) {
		t.Errorf("delete_issue = %v, want refused by name", err)
	}
	if len(s.PIDs()) != 1 {
		t.Errorf("%d server processes for alice's session (delete_issue would have ended it), want 1", len(s.PIDs()))
	}
	recs := w.audit.calls(t, 2)
	if recs[0].MCP.Tool != "get_issue" || recs[0].Decision != audit.DecisionAllow || recs[1].MCP.Tool != "delete_issue" || recs[1].Decision == audit.DecisionAllow {
		t.Errorf("audit records: %+v %+v", recs[0], recs[1])
	}
}
