package mcpstdio_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/moatmesh/moat/internal/npmtest"
	"github.com/moatmesh/moat/node/mcpguard/mcptest"
	"github.com/moatmesh/moat/node/mcpstdio"
)

// TestNodeServer supervises a stdio server made with the official MCP
// TypeScript SDK (testdata/node, pinned by its package-lock.json) as the
// shipped unit runs the node: this process under MemoryDenyWriteExecute
// (ProtectSelf, as moat-node does at start), which must not reach the
// server, whose V8 JIT makes pages executable. Listed, callable (a hot
// loop V8 compiles), without capabilities, restarted after a kill.
func TestNodeServer(t *testing.T) {
	needRoot(t)
	dir := "testdata/node"
	node := npmtest.Install(t, dir)
	inForce, inherited, err := mcpstdio.ProtectSelf()
	if err != nil || !inForce || inherited {
		t.Fatalf("ProtectSelf = %v %v %v: want MDWE in force here and not inherited", inForce, inherited, err)
	}
	script, err := filepath.Abs(filepath.Join(dir, "server.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	s, url, rel := serve(t, mcpstdio.Config{Command: mcpstdio.Command{Name: "jira-node", Path: node, Args: []string{script}}})
	cs := mcptest.Connect(t, url, http.DefaultClient)
	if got := mcptest.Tools(t, cs); got != "search_issues,get_issue,delete_issue" {
		t.Errorf("tools/list = %s", got)
	}
	if got, err := mcptest.Call(cs, "get_issue", map[string]any{"id": "OPS-1"}); err != nil || !strings.HasPrefix(got, "Issue OPS-1: printer broken") {
		t.Errorf("get_issue = %q, %v", got, err)
	}
	pid := onlyPID(t, s)
	checkSandboxed(t, pid, rel)

	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, "the killed process's session to end", func() bool { return len(s.PIDs()) == 0 })
	cs2 := mcptest.Connect(t, url, http.DefaultClient)
	if got, err := mcptest.Call(cs2, "search_issues", map[string]any{"query": "printer"}); err != nil || got != "found 2 issues for printer" {
		t.Errorf("after the restart, search_issues = %q, %v", got, err)
	}
}
