package lockdown

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMCPEgress confines a process in a stdio MCP server's cgroup to the
// destination its policy entry declares, on a node locked down in host
// scope: that destination answers; the coordinator's API, which the node
// itself may reach, is refused before a single frame reaches it.
func TestMCPEgress(t *testing.T) {
	if why := toolsMissing(); why != "" {
		t.Skip(why)
	}
	root, err := cgroup2Mount()
	if err != nil {
		t.Skip(err)
	}
	t.Parallel()
	h := startHosts(t)
	name := fmt.Sprintf("moat-mcp-egress-test-%d", os.Getpid())
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup here: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) }) // runs after the agent has exited
	jira := startAgent(t, h.topology.node, "jira", 0)
	check(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(jira.ask(t, "pid")), 0o644))
	h.node.must(t, "mountcg")

	cfg := hostConfig()
	cfg.MCPEgress = []MCPEgress{{Server: "jira", Cgroup: name, AllowPorts: []netip.AddrPort{netip.MustParseAddrPort(ap(inetUL, "80"))}}}
	h.node.must(t, "apply "+mustJSON(cfg))
	// Count, at the coordinator, TCP segments from the node to its API.
	run(t, h.topology.coord, "nft", "add table ip probe; add chain ip probe in { type filter hook input priority 0; }; add rule ip probe in ip saddr "+nodeUL+" tcp dport "+apiPort+" counter")
	runProbes(t, []probeCase{
		{jira, "tcp " + ap(inetUL, "80"), true},
		{jira, "tcp " + ap(coordUL, apiPort), false},
		{jira, "udp " + ap(inetUL, "9999"), false},
		{jira, "tcp " + ap(empUL, "80"), false}, // an admin extra of the node's
	})
	if got := run(t, h.topology.coord, "nft", "list chain ip probe in"); !strings.Contains(got, "packets 0 ") {
		t.Errorf("frames from the MCP server reached the coordinator's API:\n%s", got)
	}
	runProbes(t, []probeCase{{h.node, "tcp " + ap(coordUL, apiPort), true}})
	if got := run(t, h.topology.coord, "nft", "list chain ip probe in"); strings.Contains(got, "packets 0 ") {
		t.Errorf("the coordinator counted no frames from the node itself either; the check above proves nothing:\n%s", got)
	}
	if c, _ := h.status(t).Counter(CatEgressMCP); c.Packets == 0 {
		t.Errorf("counter %s = %+v, want packets > 0", CatEgressMCP, c)
	}
	h.node.must(t, "off")
}
