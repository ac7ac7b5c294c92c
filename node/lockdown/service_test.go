package lockdown

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const serviceUID = 65534 // nobody

// TestServiceScope applies the service-scope lockdown for uid 65534 and
// proves that a process of that user can reach loopback and nothing else
// (not the internet, not the coordinator, not the mesh, not even by
// answering a connection), while the rest of the host is left alone and
// the inference port stays loopback-only.
func TestServiceScope(t *testing.T) {
	t.Parallel()
	h := startHosts(t)
	svc := startAgent(t, h.topology.node, "svc", serviceUID)
	svc.must(t, "listen tcp :9000") // a port the server opened by mistake
	runProbes(t, []probeCase{
		{svc, "tcp " + ap(inetUL, "80"), true},
		{svc, "icmp " + inetUL, true},
		{h.emp, "tcp " + ap(nodeUL, "9000"), true},
	})
	before := h.ruleset(t)
	// Applying over a host-scope table replaces it in the same batch.
	h.node.must(t, "apply "+mustJSON(hostConfig()))
	h.node.must(t, "apply "+mustJSON(Config{Scope: ScopeService, ServiceUID: serviceUID, InferencePorts: []uint16{11434}}))
	h.node.must(t, "peers "+mustJSON([]Peer{empPeer}))
	runProbes(t, []probeCase{
		{svc, "tcp " + ap(inetUL, "80"), false},
		{svc, "udp " + ap(inetUL, "9999"), false},
		{svc, "icmp " + inetUL, false},
		{svc, "udp " + ap(inetUL, "53"), false},
		{svc, "tcp " + ap(inetUL, "53"), false},
		{svc, "tcp " + ap(inetUL6, "80"), false},
		{svc, "tcp " + ap(coordUL, apiPort), false},
		{svc, "tcp " + ap(empMesh, "80"), false},
		{svc, "tcp " + ap("127.0.0.1", inferencePort), true},
		{svc, "tcp " + ap("::1", inferencePort), true},
		// The rest of the host is not restricted in this scope.
		{h.node, "tcp " + ap(inetUL, "80"), true},
		{h.node, "icmp " + inetUL, true},
		// Inbound: the inference port is loopback-only, and the server
		// cannot even answer on a port it opened by mistake.
		{h.emp, "tcp " + ap(nodeUL, inferencePort), false},
		{h.emp, "tcp " + ap(nodeUL, "9000"), false},
		{h.emp, "tcp " + ap(nodeUL, guardPort), true},
	})
	st := h.status(t)
	if st.Scope != ScopeService {
		t.Errorf("status scope %q, want service", st.Scope)
	}
	for _, cat := range []string{CatService, CatIngressInference} {
		if c, _ := st.Counter(cat); c.Packets == 0 {
			t.Errorf("counter %s = %+v, want packets > 0", cat, c)
		}
	}
	h.node.must(t, "off")
	if got := h.ruleset(t); got != before {
		t.Errorf("after Off the ruleset is\n%s\nwant\n%s", got, before)
	}
}

// TestServiceCgroup restricts a root process by its cgroup v2 alone.
func TestServiceCgroup(t *testing.T) {
	if why := toolsMissing(); why != "" {
		t.Skip(why)
	}
	root, err := cgroup2Mount()
	if err != nil {
		t.Skip(err)
	}
	t.Parallel()
	h := startHosts(t)
	name := fmt.Sprintf("moat-ld-test-%d", os.Getpid())
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a cgroup here: %v", err)
	}
	t.Cleanup(func() { os.Remove(dir) }) // runs after the agent has exited
	cg := startAgent(t, h.topology.node, "cg", 0)
	pid := cg.ask(t, "pid")
	check(t, os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(pid), 0o644))
	if _, err := strconv.Atoi(pid); err != nil {
		t.Fatalf("pid: %s", pid)
	}
	h.node.must(t, "mountcg")
	// Fail closed: a missing cgroup is an error that says why, and
	// nothing is installed.
	before := h.ruleset(t)
	if got := h.node.ask(t, "apply "+mustJSON(Config{Scope: ScopeService, ServiceCgroup: name + "-missing"})); !strings.Contains(got, "start the inference server first") {
		t.Errorf("apply with a missing cgroup: %s", got)
	}
	if got := h.ruleset(t); got != before {
		t.Errorf("a failed Apply changed the ruleset:\n%s", got)
	}
	h.node.must(t, "apply "+mustJSON(Config{Scope: ScopeService, ServiceCgroup: name}))
	runProbes(t, []probeCase{
		{cg, "tcp " + ap(inetUL, "80"), false},
		{cg, "tcp " + ap(coordUL, apiPort), false},
		{cg, "tcp " + ap("127.0.0.1", inferencePort), true},
		{h.node, "tcp " + ap(inetUL, "80"), true},
	})
	if c, _ := h.status(t).Counter(CatService); c.Packets == 0 {
		t.Errorf("counter service = %+v, want packets > 0", c)
	}
	h.node.must(t, "off")
}
