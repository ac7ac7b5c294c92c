package mcpstdio_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/node/mcpguard/mcptest"
	"github.com/moatmesh/moat/node/mcpstdio"
)

// TestMain lets this test binary be the launcher and the stdio Jira
// server the tests supervise.
func TestMain(m *testing.M) {
	mcpstdio.LaunchMain()
	mcptest.StdioMain()
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (cgroups, capabilities, users); `make test` runs it as root")
	}
}

// goJira is the stdio Jira server made with the Go SDK: this test binary.
func goJira(t *testing.T) mcpstdio.Command {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return mcpstdio.Command{Name: "jira", Path: self, Args: []string{mcptest.StdioFlag}}
}

// serve supervises cfg's server, in a cgroup of its own, and serves the
// bridge over HTTP; everything stops when the test ends.
func serve(t *testing.T, cfg mcpstdio.Config) (*mcpstdio.Server, string, string) {
	t.Helper()
	dir, rel, err := mcpstdio.MakeCgroup(fmt.Sprintf("%s-test-%d", cfg.Command.Name, time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cgroup = dir
	s, err := mcpstdio.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Close()
		s.Close()
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("cgroup %s left behind", dir)
		}
	})
	return s, hs.URL + "/mcp", rel
}

// waitFor waits up to 20 seconds for ok.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not waiting for time to pass
	}
}

// onlyPID returns the one process s runs.
func onlyPID(t *testing.T, s *mcpstdio.Server) int {
	t.Helper()
	pids := s.PIDs()
	if len(pids) != 1 {
		t.Fatalf("server runs %d processes, want 1", len(pids))
	}
	return pids[0]
}

// status returns the fields of /proc/PID/status.
func status(t *testing.T, pid int) map[string]string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		out[k] = strings.TrimSpace(v)
	}
	return out
}

// checkSandboxed checks that pid holds no capability and cannot gain
// one, runs in cgroup rel, and did not get this process's environment.
func checkSandboxed(t *testing.T, pid int, rel string) {
	t.Helper()
	st := status(t, pid)
	for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if st[set] != "0000000000000000" {
			t.Errorf("MCP server %s = %s, want none", set, st[set])
		}
	}
	if st["NoNewPrivs"] != "1" {
		t.Errorf("MCP server NoNewPrivs = %s, want 1", st["NoNewPrivs"])
	}
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil || !strings.Contains(string(cg), "0::"+rel+"\n") {
		t.Errorf("MCP server cgroup = %q (%v), want 0::%s", cg, err, rel)
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil || strings.Contains(string(env), "MOAT_TEST_CANARY") || !strings.Contains(string(env), "PATH=") {
		t.Errorf("MCP server environment = %q (%v): want its own, not the node's", env, err)
	}
}

func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func uid(t *testing.T, pid int) int {
	t.Helper()
	f := strings.Fields(status(t, pid)["Uid"])
	if len(f) == 0 {
		t.Fatalf("no Uid for %d", pid)
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// copyExecutable copies this test binary where any user may run it.
func copyExecutable(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "moat-mcpstdio-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	self, _ := os.Executable()
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "jira")
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
