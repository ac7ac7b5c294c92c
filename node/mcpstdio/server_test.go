package mcpstdio_test

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moatmesh/moat/node/mcpguard/mcptest"
	"github.com/moatmesh/moat/node/mcpstdio"
)

// TestGoServer supervises the Go SDK's stdio server: listed and callable
// through the bridge, started without any capability, in its own cgroup
// and environment; killed, its session ends and the next one starts a
// new process; stopped with the supervisor.
func TestGoServer(t *testing.T) {
	needRoot(t)
	t.Setenv("MOAT_TEST_CANARY", "the node's environment")
	s, url, rel := serve(t, mcpstdio.Config{Command: goJira(t)})
	cs := mcptest.Connect(t, url, http.DefaultClient)
	if got := mcptest.Tools(t, cs); got != "delete_issue,get_issue,search_issues" {
		t.Errorf("tools/list = %s", got)
	}
	if got, err := mcptest.Call(cs, "get_issue", map[string]any{"id": "OPS-1"}); err != nil || got != "Issue OPS-1: printer broken" {
		t.Errorf("get_issue = %q, %v", got, err)
	}
	pid := onlyPID(t, s)
	checkSandboxed(t, pid, rel)

	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, "the killed process's session to end", func() bool { return len(s.PIDs()) == 0 })
	if _, err := mcptest.Call(cs, "get_issue", map[string]any{"id": "OPS-2"}); err == nil {
		t.Error("a call in the killed process's session succeeded")
	}
	cs2 := mcptest.Connect(t, url, http.DefaultClient)
	if got, err := mcptest.Call(cs2, "search_issues", map[string]any{"query": "printer"}); err != nil || got != "found 2 issues for printer" {
		t.Errorf("after the restart, search_issues = %q, %v", got, err)
	}
	if again := onlyPID(t, s); again == pid {
		t.Errorf("the new session runs in the killed process %d", pid)
	}
	s.Close()
	if len(s.PIDs()) != 0 {
		t.Errorf("processes left after Close: %v", s.PIDs())
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("process %d still runs", pid)
	}
}

// TestOwnUser runs the server as nobody.
func TestOwnUser(t *testing.T) {
	needRoot(t)
	nobody := uint32(65534)
	c := goJira(t)
	c.Path, c.UID, c.GID = copyExecutable(t), &nobody, 65534
	s, url, rel := serve(t, mcpstdio.Config{Command: c, Home: t.TempDir() + "/home"})
	cs := mcptest.Connect(t, url, http.DefaultClient)
	if _, err := mcptest.Call(cs, "get_issue", map[string]any{"id": "OPS-1"}); err != nil {
		t.Fatal(err)
	}
	pid := onlyPID(t, s)
	if got := uid(t, pid); got != 65534 {
		t.Errorf("server runs as uid %d, want 65534", got)
	}
	checkSandboxed(t, pid, rel)
}

// TestBackoff: a server that exits at once fails its sessions, and each
// start after such an exit waits longer.
func TestBackoff(t *testing.T) {
	needRoot(t)
	_, url, _ := serve(t, mcpstdio.Config{Command: mcpstdio.Command{Name: "broken", Path: "/bin/false"}, MinBackoff: 300 * time.Millisecond, MaxBackoff: 5 * time.Second})
	// A process exits during each initialize, after the request began;
	// so the next one cannot start before that plus the backoff.
	var began []time.Time
	for i := range 3 {
		began = append(began, time.Now())
		if code, body := post(t, url, initialize); code != http.StatusBadGateway || !strings.Contains(body, "did not answer initialize") {
			t.Fatalf("initialize %d of a server that exits = %d %s", i, code, body)
		}
		if i == 0 {
			continue
		}
		if took, want := time.Since(began[i-1]), 300*time.Millisecond<<(i-1); took < want {
			t.Errorf("start %d came %s after the previous began, want a backoff of at least %s", i, took, want)
		}
	}
}

// TestSessionRules: requests without a session must initialize; unknown
// sessions are 404; DELETE ends the process.
func TestSessionRules(t *testing.T) {
	needRoot(t)
	s, url, _ := serve(t, mcpstdio.Config{Command: goJira(t)})
	if code, _ := post(t, url, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`); code != http.StatusBadRequest {
		t.Errorf("tools/list without a session = %d, want 400", code)
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Mcp-Session-Id", "nope")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown session: %v %v, want 404", resp, err)
	}
	resp, err := http.Post(url, "application/json", strings.NewReader(initialize))
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("initialize: %v %v", resp, err)
	}
	resp.Body.Close()
	pid := onlyPID(t, s)
	del, _ := http.NewRequest(http.MethodDelete, url, nil)
	del.Header.Set("Mcp-Session-Id", resp.Header.Get("Mcp-Session-Id"))
	if resp, err := http.DefaultClient.Do(del); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	if len(s.PIDs()) != 0 || syscall.Kill(pid, 0) == nil {
		t.Errorf("process %d still runs after DELETE", pid)
	}
}
