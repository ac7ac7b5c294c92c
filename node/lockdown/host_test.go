package lockdown

import (
	"strings"
	"testing"
)

// TestHostScope applies the host-scope lockdown in the node namespace and
// proves what it allows and what it stops, that UpdatePeers moves the
// sets, that Off leaves no trace and that a third party's table is never
// touched.
func TestHostScope(t *testing.T) {
	t.Parallel()
	h := startHosts(t)
	wgSrc := "0.0.0.0:" + wgPort
	// The probes work before the lockdown: what fails later fails
	// because of it.
	runProbes(t, []probeCase{
		{h.node, "tcp " + ap(inetUL, "80"), true},
		{h.node, "udp " + ap(inetUL, "9999"), true},
		{h.node, "icmp " + inetUL, true},
		{h.node, "udp " + ap(inetUL, "53"), true},
		{h.node, "tcp " + ap(inetUL6, "80"), true},
		{h.emp, "tcp " + ap(nodeUL, inferencePort), true},
		{h.node, "tcp " + ap(empMesh, grantPort), true},
	})
	before := h.ruleset(t)
	h.installThirdParty(t)
	third := h.thirdParty(t)
	withThird := h.ruleset(t)

	h.node.must(t, "apply "+mustJSON(hostConfig()))
	h.node.must(t, "peers "+mustJSON([]Peer{empPeer}))
	if got := h.thirdParty(t); got != third {
		t.Errorf("third-party table changed by Apply:\n%s\nwant\n%s", got, third)
	}
	// nft itself can read back what we built.
	listed := run(t, h.topology.node, "nft", "list", "table", "inet", TableName)
	t.Logf("nft list table inet moat:\n%s", listed)

	t.Run("egress", func(t *testing.T) { hostEgress(t, h, wgSrc) })
	t.Run("ingress", func(t *testing.T) { hostIngress(t, h) })
	t.Run("counters", func(t *testing.T) { hostCounters(t, h) })
	t.Run("peers", func(t *testing.T) { hostPeers(t, h) })

	if got := h.thirdParty(t); got != third {
		t.Errorf("third-party table changed by UpdatePeers:\n%s\nwant\n%s", got, third)
	}
	h.node.must(t, "off")
	if got := h.ruleset(t); got != withThird {
		t.Errorf("after Off the ruleset is\n%s\nwant\n%s", got, withThird)
	}
	run(t, h.topology.node, "nft", "delete", "table", "ip", "thirdparty")
	if got := h.ruleset(t); got != before {
		t.Errorf("ruleset not back to the start:\n%s\nwant\n%s", got, before)
	}
	h.node.must(t, "off") // idempotent
	if got := h.node.ask(t, "status"); got != "err "+ErrNotApplied.Error() {
		t.Errorf("status after Off: %s, want ErrNotApplied", got)
	}
	runProbes(t, []probeCase{{h.node, "tcp " + ap(inetUL, "80"), true}})
}

func hostEgress(t *testing.T, h *hosts, wgSrc string) {
	runProbes(t, []probeCase{
		// The coordinator: API over v4 and v6, WireGuard, DNS.
		{h.node, "tcp " + ap(coordUL, apiPort), true},
		{h.node, "tcp " + ap(coordUL6, apiPort), true},
		{h.node, "udp " + ap(coordUL, wgPort) + " " + wgSrc, true},
		{h.node, "udp " + ap(coordUL, "53"), true},
		{h.node, "tcp " + ap(coordUL, "53"), true},
		// An allowed peer's WireGuard endpoint, from the WireGuard port only.
		{h.node, "udp " + ap(empUL, wgPort) + " " + wgSrc, true},
		{h.node, "udp " + ap(empUL, wgPort), false},
		// The mesh: a peer yes, anyone else on the link no.
		{h.node, "tcp " + ap(empMesh, "80"), true},
		{h.node, "tcp " + ap(empMesh6, "80"), true},
		{h.node, "tcp " + ap(strangerMesh, "80"), false},
		// A peer on a port the policy does not grant this node.
		{h.node, "tcp " + ap(empMesh, grantPort), false},
		// The internet: TCP, UDP, ICMP, DNS, over v4 and v6.
		{h.node, "tcp " + ap(inetUL, "80"), false},
		{h.node, "udp " + ap(inetUL, "9999"), false},
		{h.node, "icmp " + inetUL, false},
		{h.node, "icmp " + inetUL6, false},
		{h.node, "udp " + ap(inetUL, "53"), false},
		{h.node, "tcp " + ap(inetUL, "53"), false},
		{h.node, "tcp " + ap(inetUL6, "80"), false},
		{h.node, "udp " + ap(inetUL, wgPort) + " " + wgSrc, false},
		// The admin's extras: an IPv6 network, an IPv4 address and port.
		{h.node, "tcp " + ap(empUL6, "80"), true},
		{h.node, "udp " + ap(empUL6, wgPort2), true},
		{h.node, "tcp " + ap(empUL, "80"), true},
		{h.node, "udp " + ap(empUL, wgPort2), false},
		// The coordinator host on a port that is not its API.
		{h.node, "tcp " + ap(coordUL, "80"), false},
	})
}

func hostIngress(t *testing.T, h *hosts) {
	runProbes(t, []probeCase{
		// The inference server listens on 0.0.0.0, yet is unreachable.
		{h.emp, "tcp " + ap(nodeUL, inferencePort), false},
		{h.emp, "tcp " + ap(nodeMesh, inferencePort) + " " + ap(empMesh, "0"), false},
		// The guard: over the mesh from a peer only.
		{h.emp, "tcp " + ap(nodeMesh, guardPort) + " " + ap(empMesh, "0"), true},
		{h.emp, "tcp " + ap(nodeMesh6, guardPort) + " " + ap(empMesh6, "0"), true},
		{h.emp, "tcp " + ap(nodeMesh, guardPort) + " " + ap(strangerMesh, "0"), false},
		{h.emp, "tcp " + ap(nodeUL, guardPort), false},
		// A network grant: port 2222 from the employee's mesh address only.
		{h.emp, "tcp " + ap(nodeMesh, grantPort) + " " + ap(empMesh, "0"), true},
		{h.emp, "tcp " + ap(nodeMesh, grantPort) + " " + ap(strangerMesh, "0"), false},
		{h.emp, "tcp " + ap(nodeMesh6, grantPort) + " " + ap(empMesh6, "0"), false},
		// Inference still works on loopback.
		{h.node, "tcp " + ap("127.0.0.1", inferencePort), true},
	})
}

func hostCounters(t *testing.T, h *hosts) {
	st := h.status(t)
	for _, cat := range []string{CatEgressTCP, CatEgressUDP, CatEgressICMP, CatEgressDNS, CatEgressMesh,
		CatIngressInference, CatIngressMesh, CatIngressOther} {
		if c, ok := st.Counter(cat); !ok || c.Packets == 0 || c.Bytes == 0 {
			t.Errorf("counter %s = %+v (present %v), want packets and bytes > 0", cat, c, ok)
		}
	}
	text := st.String()
	for _, want := range []string{"scope host", "chain output (hook output, policy drop)",
		"meta oif == 1 (lo) accept", "ip daddr . tcp dport @coordinator4 accept", "mesh_peers4 = { " + empMesh + " }",
		"wg_endpoints4 = { " + coordUL + " . 51820, " + empUL + " . 51820, " + empUL + " . 51821 }", "coordinator6 = { " + coordUL6 + " . 8080 }"} {
		if !strings.Contains(text, want) {
			t.Errorf("status lacks %q:\n%s", want, text)
		}
	}
	t.Logf("status:\n%s", text)
}

func hostPeers(t *testing.T, h *hosts) {
	h.node.must(t, "peers []")
	took := h.waitSet(t, setMeshPeers4, empMesh, false)
	h.waitSet(t, setEndpoints4, empUL+" . 51820", false)
	h.waitSet(t, setEndpoints4, coordUL+" . 51820", true) // the coordinator stays
	runProbes(t, []probeCase{
		{h.emp, "tcp " + ap(nodeMesh, guardPort) + " " + ap(empMesh, "0"), false},
		{h.node, "tcp " + ap(empMesh, "80"), false},
		// A new flow to the removed endpoint (an old one lives on in
		// conntrack; WireGuard itself has dropped the peer's key).
		{h.node, "udp " + ap(empUL, wgPort2) + " 0.0.0.0:" + wgPort, false},
	})
	h.node.must(t, "peers "+mustJSON([]Peer{empPeer}))
	took += h.waitSet(t, setMeshPeers4, empMesh, true)
	runProbes(t, []probeCase{
		{h.emp, "tcp " + ap(nodeMesh, guardPort) + " " + ap(empMesh, "0"), true},
		{h.node, "udp " + ap(empUL, wgPort2) + " 0.0.0.0:" + wgPort, true},
	})
	t.Logf("peer removal and re-add reflected in the sets within %v", took)
}
