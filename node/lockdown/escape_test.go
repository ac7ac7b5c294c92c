package lockdown

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/netns"
)

// A container behind the node: a namespace on the node's bridge-less
// veth ctr0, routed and masqueraded by the node as Docker does, with a
// port published by DNAT. 198.18.9.2 is the inference container, .3 an
// ordinary one.
const (
	ctrGW       = "198.18.9.1"
	ctrUpstream = "198.18.9.2"
	ctrOther    = "198.18.9.3"
	leakPort    = "7777" // where the escapes aim, on the internet host
	barrierPort = "9998" // an admin extra the node may reach: the barrier
)

const dockerish = `table ip dockerish {
	chain pre { type nat hook prerouting priority dstnat; tcp dport 8000 dnat to 198.18.9.2:80; }
	chain post { type nat hook postrouting priority srcnat; ip saddr 198.18.9.0/24 oifname != "ctr0" masquerade; }
}
`

type escapeHosts struct {
	*hosts
	ctr, nobody *agent
	barriers    int
	baseline    string // leak frames counted before the lockdown
}

// TestEscapes attempts each known way around the lockdown and counts the
// frames that carry the attempt's marker at the internet host, which is
// also the node's default gateway: every count must stay where it was
// before the lockdown.
func TestEscapes(t *testing.T) {
	t.Parallel()
	start := time.Now()
	h := &escapeHosts{hosts: startHosts(t)}
	h.addContainer(t)
	h.inet.must(t, "capture eth0")
	// The capture sees each kind of attempt while nothing stops it.
	h.node.must(t, "send "+ap(inetUL, leakPort))
	h.node.must(t, "nd 135 ff02::1 eth0")
	h.node.must(t, "packet eth0 0x0800 queue")
	h.baseline = h.leaks(t)
	if h.baseline != "3" {
		t.Fatalf("the capture saw %s of the 3 control frames", h.baseline)
	}
	cfg := hostConfig()
	cfg.Upstreams = []netip.AddrPort{netip.MustParseAddrPort(ap(ctrUpstream, "8000"))}
	cfg.Forward = []netip.AddrPort{netip.MustParseAddrPort(ap(inetUL, "9999"))}
	cfg.ExtraPorts = append(cfg.ExtraPorts, netip.MustParseAddrPort(ap(inetUL, barrierPort)))
	cfg.CoordinatorUIDs = []uint32{0}
	h.node.must(t, "apply "+mustJSON(cfg))
	h.node.must(t, "peers "+mustJSON([]Peer{empPeer}))
	h.node.must(t, "watch")

	t.Run("allowed", func(t *testing.T) { escapeAllowed(t, h) })
	t.Run("wireguard port", func(t *testing.T) { escapeWireGuardPort(t, h) })
	t.Run("neighbour discovery", func(t *testing.T) { escapeND(t, h) })
	t.Run("packet sockets", func(t *testing.T) { escapePacket(t, h) })
	t.Run("containers", func(t *testing.T) { escapeContainers(t, h) })
	t.Run("coordinator uid", func(t *testing.T) { escapeCoordinatorUID(t, h) })
	t.Run("rename", func(t *testing.T) { escapeRename(t, h) })
	t.Run("flush", func(t *testing.T) { escapeFlush(t, h) })
	h.node.must(t, "unwatch")
	h.node.must(t, "off")
	t.Logf("escapes tested in %v", time.Since(start).Round(time.Millisecond))
}

func (h *escapeHosts) addContainer(t *testing.T) {
	ctrNS := newNS(t, "moat-ld-ctr")
	node := h.topology.node
	check(t, netns.Veth(node, "ctr0", pfx(ctrGW+"/24"), ctrNS, "eth0", pfx(ctrUpstream+"/24")))
	check(t, netns.AddAddrs(ctrNS, "eth0", pfx(ctrOther+"/24")))
	check(t, ctrNS.IP("route", "add", "default", "via", ctrGW))
	check(t, node.IP("route", "add", "default", "via", inetUL))
	check(t, node.IP("-6", "route", "add", "default", "via", inetUL6))
	run(t, node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	run(t, ctrNS, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
	cmd := node.Command(t.Context(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(dockerish)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s", err, out)
	}
	h.ctr = startAgent(t, ctrNS, "ctr", 0)
	h.nobody = startAgent(t, node, "nobody", serviceUID)
	h.ctr.must(t, "listen tcp :80")
	h.ctr.must(t, "listen tcp :8000")
	runProbes(t, []probeCase{
		{h.ctr, "tcp " + ap(inetUL, "80"), true},
		{h.emp, "tcp " + ap(nodeUL, "8000"), true},
		{h.node, "tcp " + ap(ctrUpstream, "8000"), true},
		{h.nobody, "tcp " + ap(coordUL, apiPort), true},
	})
}

// leaks sends a barrier from the node and returns the capture's count.
func (h *escapeHosts) leaks(t *testing.T) string {
	t.Helper()
	h.barriers++
	name := fmt.Sprintf("moatbarrier-%d", h.barriers)
	h.node.must(t, "barrier "+ap(inetUL, barrierPort)+" "+name)
	return h.inet.ask(t, "leaks "+name)
}

func (h *escapeHosts) noLeaks(t *testing.T) {
	t.Helper()
	if got := h.leaks(t); got != h.baseline {
		t.Errorf("frames with the marker at the internet host: %s, want %s (none since the lockdown)", got, h.baseline)
	}
}

func escapeAllowed(t *testing.T, h *escapeHosts) {
	// The kernel's own neighbour discovery still works.
	run(t, h.topology.node, "ip", "-6", "neigh", "flush", "all")
	runProbes(t, []probeCase{
		{h.node, "tcp " + ap(coordUL6, apiPort), true},
		{h.node, "tcp " + ap(ctrUpstream, "8000"), true},
	})
}

func escapeWireGuardPort(t *testing.T, h *escapeHosts) {
	// Anyone may send to the WireGuard port; that must not open a reply path.
	h.inet.ask(t, "udp "+ap(nodeUL, wgPort)+" "+ap(inetUL, leakPort)+" wait=100ms")
	h.node.must(t, "rawudp "+ap(nodeUL, wgPort)+" "+ap(inetUL, leakPort))
	h.node.must(t, "rawudp "+ap(nodeUL, "40000")+" "+ap(inetUL, leakPort))
	h.node.must(t, "send "+ap(inetUL, leakPort))
	h.noLeaks(t)
}

func escapeND(t *testing.T, h *escapeHosts) {
	for _, c := range []string{"135 ff02::1", "136 ff02::1", "135 " + inetUL6, "136 " + inetUL6, "133 ff02::2", "134 ff02::1", "135 ff02::1:ff00:3"} {
		h.node.must(t, "nd "+c+" eth0")
	}
	h.noLeaks(t)
}

func escapePacket(t *testing.T, h *escapeHosts) {
	if got := h.node.ask(t, "packetfilter"); !strings.Contains(got, "eth0") {
		t.Skipf("packet sockets are not filtered here: %s", got)
	}
	for _, c := range []string{"0x0800 queue", "0x0800 bypass", "0x0806 queue", "0x86dd bypass"} {
		h.node.must(t, "packet eth0 "+c)
	}
	h.noLeaks(t)
	if c, _ := h.status(t).Counter(CatEgressPacket); c.Packets < 4 {
		t.Errorf("counter %s = %+v, want at least the 4 frames", CatEgressPacket, c)
	}
}

func escapeContainers(t *testing.T, h *escapeHosts) {
	h.ctr.must(t, "send "+ap(inetUL, leakPort))
	h.ctr.must(t, "send "+ap(inetUL, "9999"))
	runProbes(t, []probeCase{
		// The inference container's own egress, even to an allowed forward destination.
		{h.ctr, "tcp " + ap(inetUL, "80"), false},
		{h.ctr, "udp " + ap(inetUL, "9999"), false},
		{h.ctr, "icmp " + inetUL, false},
		{h.ctr, "udp " + ap(inetUL, "53"), false},
		{h.ctr, "tcp " + ap(coordUL, apiPort), false},
		// Another container: only Forward's destinations.
		{h.ctr, "udp " + ap(inetUL, "9999") + " " + ap(ctrOther, "0"), true},
		{h.ctr, "tcp " + ap(inetUL, "80") + " " + ap(ctrOther, "0"), false},
		// The published port, from the LAN; the container from the host.
		{h.emp, "tcp " + ap(nodeUL, "8000"), false},
		{h.node, "tcp " + ap(ctrUpstream, "80"), false},
		// The containers cannot reach the host either.
		{h.ctr, "tcp " + ap(ctrGW, guardPort), false},
	})
	h.noLeaks(t)
	if c, _ := h.status(t).Counter(CatForward); c.Packets == 0 {
		t.Errorf("counter %s = %+v, want packets > 0", CatForward, c)
	}
}

func escapeCoordinatorUID(t *testing.T, h *escapeHosts) {
	runProbes(t, []probeCase{
		{h.nobody, "tcp " + ap(coordUL, apiPort), false},
		{h.node, "tcp " + ap(coordUL, apiPort), true},
	})
}

// escapeRename gives loopback's name to the underlay interface, as an
// attacker with CAP_NET_ADMIN would, and checks that nothing gets out
// and that Watch notices within 5 s.
func escapeRename(t *testing.T, h *escapeHosts) {
	node := h.topology.node
	start := time.Now()
	for _, args := range [][]string{
		{"link", "set", "lo", "down"}, {"link", "set", "lo", "name", "lo0"}, {"link", "set", "lo0", "up"},
		{"link", "set", "eth0", "down"}, {"link", "set", "eth0", "name", "lo"}, {"link", "set", "lo", "up"},
		{"route", "replace", "default", "via", inetUL},
	} {
		check(t, node.IP(args...))
	}
	h.node.must(t, "send "+ap(inetUL, leakPort))
	h.node.must(t, "rawudp "+ap(nodeUL, "40000")+" "+ap(inetUL, leakPort))
	h.noLeaks(t)
	e := h.waitEvent(t, EventInterfaces, start, 5*time.Second)
	t.Logf("rename detected and re-applied %v after it began: %s", e.Time.Sub(start).Round(time.Millisecond), e.Reason)
	if !strings.Contains(e.Reason, "lo0") {
		t.Errorf("event %q does not name the renamed loopback", e.Reason)
	}
	h.node.must(t, "packet lo 0x0800 queue") // the old eth0, now named lo, is filtered again
	h.noLeaks(t)
}

// escapeFlush flushes the whole ruleset, as Debian's nftables.service
// does on reload, and checks the lockdown is back within 5 s.
func escapeFlush(t *testing.T, h *escapeHosts) {
	start := time.Now()
	run(t, h.topology.node, "nft", "flush", "ruleset")
	e := h.waitEvent(t, EventRestored, start, 5*time.Second)
	t.Logf("flush restored %v after it (re-apply took %v): %s", e.Time.Sub(start).Round(time.Millisecond), e.Took, e.Reason)
	if got := h.node.ask(t, "healthy"); !strings.HasPrefix(got, "true") {
		t.Errorf("healthy after restore: %s", got)
	}
	h.waitEvent(t, EventLost, start, time.Second)
	// The loss was reported while the table was still missing and Healthy
	// said so: a node holding its models on it refuses in the gap.
	if got := h.node.ask(t, "atloss"); !strings.HasPrefix(got, "healthy=false missing=true") {
		t.Errorf("state while the loss was reported: %q, want healthy=false missing=true", got)
	}
	h.node.must(t, "send "+ap(inetUL, leakPort))
	h.noLeaks(t)
	// A rule slipped in by someone else is a loss too.
	start = time.Now()
	run(t, h.topology.node, "nft", "insert", "rule", "inet", TableName, "output", "accept")
	h.waitEvent(t, EventRestored, start, 5*time.Second)
	if strings.Contains(run(t, h.topology.node, "nft", "list", "chain", "inet", TableName, "output"), "\t\taccept\n") {
		t.Error("the inserted rule is still there")
	}
}

// waitEvent waits until the node's Watch has reported an event of kind
// at or after since, and returns it.
func (h *escapeHosts) waitEvent(t *testing.T, kind EventKind, since time.Time, within time.Duration) Event {
	t.Helper()
	for deadline := since.Add(within); ; {
		var events []Event
		if err := json.Unmarshal([]byte(h.node.ask(t, "events")), &events); err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(events, func(e Event) bool { return e.Kind == kind && !e.Time.Before(since) }); i >= 0 {
			return events[i]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event within %v; events: %+v", kind, within, events)
		}
	}
}
