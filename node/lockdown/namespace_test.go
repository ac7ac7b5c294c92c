package lockdown

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/policy"
)

const thirdParty = `table ip thirdparty {
	chain out {
		type filter hook output priority 10; policy accept;
		ip daddr 198.18.0.99 tcp dport 9 counter drop
	}
}
`

type hosts struct {
	*topology
	coord, node, inet, emp *agent
}

// startHosts builds the topology and starts the servers every test
// probes: the coordinator's API, WireGuard and DNS; the internet host's
// TCP, UDP and DNS; the employee's WireGuard and mesh web server; and on
// the node, the inference server on 0.0.0.0, the guard and a granted port.
func startHosts(t *testing.T) *hosts {
	if why := toolsMissing(); why != "" {
		t.Skip(why)
	}
	tp := newTopology(t)
	h := &hosts{topology: tp,
		coord: startAgent(t, tp.coord, "coord", 0), node: startAgent(t, tp.node, "node", 0),
		inet: startAgent(t, tp.inet, "inet", 0), emp: startAgent(t, tp.emp, "emp", 0)}
	for a, ls := range map[*agent][]string{
		h.coord: {"tcp :" + apiPort, "udp :" + wgPort, "udp :53", "tcp :53"},
		h.inet:  {"tcp :80", "udp :9999", "udp :53", "tcp :53"},
		h.emp:   {"udp :" + wgPort, "udp :" + wgPort2, "tcp :80", "tcp :" + grantPort},
		h.node:  {"tcp :" + inferencePort, "tcp :" + guardPort, "tcp :" + grantPort},
	} {
		for _, l := range ls {
			a.must(t, "listen "+l)
		}
	}
	return h
}

// hostConfig is the node's lockdown: coordinator API (by URL over IPv4,
// by address over IPv6) and WireGuard, one
// resolver on the coordinator host, the guard, a grant of port 2222 to
// the employee's mesh address, and mesh egress to the employee's port
// 80; as admin extras, a small IPv6 network around the employee and its
// IPv4 port 80.
func hostConfig() Config {
	return Config{
		MeshInterface: "moat0", WireGuardPort: 51820, GuardPort: 8443, InferencePorts: []uint16{11434},
		CoordinatorURL:       "https://" + ap(coordUL, apiPort) + "/",
		Coordinator:          []netip.AddrPort{netip.MustParseAddrPort(ap(coordUL6, apiPort))},
		CoordinatorWireGuard: []netip.AddrPort{netip.MustParseAddrPort(ap(coordUL, wgPort))},
		AllowDNS:             []netip.Addr{netip.MustParseAddr(coordUL)},
		Extra:                []netip.Prefix{pfx("2001:2::4/126")},
		ExtraPorts:           []netip.AddrPort{netip.MustParseAddrPort(ap(empUL, "80"))},
		NetworkGrants:        []policy.FilterRule{{Src: []netip.Prefix{pfx(empMesh + "/32")}, Ports: []policy.PortRange{{First: 2222, Last: 2222}}}},
		MeshEgress:           []MeshRule{{Dst: []netip.Prefix{pfx(empMesh + "/32"), pfx(empMesh6 + "/128")}, Ports: []policy.PortRange{{First: 80, Last: 80}}}},
	}
}

var empPeer = Peer{
	Addresses: []netip.Addr{netip.MustParseAddr(empMesh), netip.MustParseAddr(empMesh6)},
	Endpoints: []netip.AddrPort{netip.MustParseAddrPort(ap(empUL, wgPort)), netip.MustParseAddrPort(ap(empUL, wgPort2))},
}

type probeCase struct {
	from *agent
	cmd  string
	ok   bool
}

func runProbes(t *testing.T, cases []probeCase) {
	t.Helper()
	for _, c := range cases {
		cmd := c.cmd
		if !c.ok {
			cmd += " wait=" + blockedWait.String()
		}
		got := c.from.ask(t, cmd)
		if (got == "ok") != c.ok {
			t.Errorf("%s: %s: got %q, want ok=%v", c.from.name, c.cmd, got, c.ok)
		}
	}
}

func (h *hosts) status(t *testing.T) Status {
	t.Helper()
	got := h.node.ask(t, "status")
	var st Status
	if err := json.Unmarshal([]byte(got), &st); err != nil {
		t.Fatalf("status: %s", got)
	}
	return st
}

// waitSet polls the node's status until set holds (or lacks) elem, and
// fails after a second.
func (h *hosts) waitSet(t *testing.T, set, elem string, present bool) time.Duration {
	t.Helper()
	start := time.Now()
	for deadline := start.Add(time.Second); ; {
		elems, _ := h.status(t).Set(set)
		if slices.Contains(elems, elem) == present {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("set %s = %v: after 1s %q present=%v, want %v", set, elems, elem, !present, present)
		}
	}
}

func (h *hosts) ruleset(t *testing.T) string {
	return run(t, h.topology.node, "nft", "list", "ruleset")
}

func (h *hosts) thirdParty(t *testing.T) string {
	return run(t, h.topology.node, "nft", "list", "table", "ip", "thirdparty")
}

func (h *hosts) installThirdParty(t *testing.T) {
	t.Helper()
	cmd := h.topology.node.Command(t.Context(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(thirdParty)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s", err, out)
	}
}
