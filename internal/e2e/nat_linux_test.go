package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/netns"
	"github.com/moatmesh/moat/mesh/engine"
)

// TestReachThroughNAT: a laptop behind a NAT router reaches a GPU node
// directly, whether the node has a public address or sits behind a NAT
// of its own. The routers are real nftables masquerades, as home and
// office routers are: endpoint-independent mapping (Linux keeps the
// source port), and only replies to flows from inside come back, so two
// members behind them reach each other only by both sending at once
// (hole punching) to the public addresses STUN showed them.
func TestReachThroughNAT(t *testing.T) {
	if why := netns.Unavailable(); why != "" {
		t.Skip(why)
	}
	for _, tc := range []struct {
		name      string
		gpuBehind bool
	}{{"node public", false}, {"both behind NAT", true}} {
		t.Run(tc.name, func(t *testing.T) { testReachThroughNAT(t, tc.gpuBehind) })
	}
}

func testReachThroughNAT(t *testing.T, gpuBehindNAT bool) {
	ctx := t.Context()
	sw, coordNS := natInternet(t)
	laptopNS := behindNAT(t, sw, 1)
	gpuNS, gpuEndpoint := behindNAT(t, sw, 2), netip.AddrPort{}
	if !gpuBehindNAT {
		gpuNS, gpuEndpoint = onInternet(t, sw, tunGPUUL), netip.AddrPortFrom(tunGPUUL.Addr(), tunWGPort)
	}
	coord, _, coordURL, fingerprint := reachCoordinator(t, coordNS)
	debug := os.Getenv("MOAT_TEST_LOG") != ""

	gpu := startE2EChild(t, gpuNS, tunChildConfig{Role: "gpu", Coordinator: coordURL, Fingerprint: fingerprint, Debug: debug,
		EnrollKey: coord.EnrollKey(t, "tag:gpu"), StateDir: t.TempDir(), Endpoint: gpuEndpoint, Lockdown: true})
	var ready gpuReady
	if err := json.Unmarshal([]byte(gpu.Expect(t, "ready ", 20*time.Second)), &ready); err != nil {
		t.Fatal(err)
	}
	dir := SignInDevice(t, ctx, coord, coord.AddPerson(t, "alice@example.com", false), "laptop", coordURL, fingerprint)
	laptop := startE2EChild(t, laptopNS, tunChildConfig{Role: "reach", Coordinator: coordURL, Fingerprint: fingerprint, Debug: debug,
		DeviceDir: string(dir), Node: ready.Node})
	var r reachResult
	// First contact: the laptop asks as soon as its netmap has the node,
	// and its relay connection and the node's netmap entry for it (which
	// the node's lockdown sends by) are still on their way. Its first
	// handshake must not be lost to WireGuard's 5 s retry.
	if err := json.Unmarshal([]byte(laptop.Ask(t, "chat", 30*time.Second)), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusOK || !r.Chunks || r.Seconds > firstContact.Seconds() {
		t.Fatalf("first answer %+v, want a streamed answer within %v", r, firstContact)
	}
	t.Logf("first answer after %.2fs (path %s)", r.Seconds, r.Path)
	if err := json.Unmarshal([]byte(laptop.Ask(t, "waitpath direct", 40*time.Second)), &r); err != nil {
		t.Fatal(err)
	}
	if r.Err != "" || r.Path != engine.PathDirect {
		t.Fatalf("no direct path through the NAT: %+v", r)
	}
	t.Logf("direct after %.2fs, %d answers streamed meanwhile", r.Seconds, r.Chats)
	if err := json.Unmarshal([]byte(laptop.Ask(t, "chat", 30*time.Second)), &r); err != nil {
		t.Fatal(err)
	}
	if r.Status != http.StatusOK || !r.Chunks || r.Path != engine.PathDirect {
		t.Fatalf("a completion over the direct path: %+v", r)
	}
	waitAudit(t, coord, 1)
}

// firstContact bounds the first answer from a node the laptop has just
// seen: a few round trips, with room for load; WireGuard's handshake
// retry is 5 s.
const firstContact = 1500 * time.Millisecond

// natInternet makes the "internet": a switch with the coordinator on it
// at tunCoordUL.
func natInternet(t *testing.T) (sw, coord *netns.NS) {
	t.Helper()
	sw = newNS(t, "moat-nat-sw")
	if err := netns.Bridge(sw, "br0"); err != nil {
		t.Fatal(err)
	}
	return sw, onInternet(t, sw, tunCoordUL)
}

// onInternet makes a host on sw's bridge at addr.
func onInternet(t *testing.T, sw *netns.NS, addr netip.Prefix) *netns.NS {
	t.Helper()
	h := newNS(t, "moat-nat-h")
	if err := netns.Attach(h, "ul0", []netip.Prefix{addr}, sw, "br0"); err != nil {
		t.Fatal(err)
	}
	return h
}

// behindNAT makes site n: a router on sw's bridge at 198.18.0.1n/24 that
// masquerades for its LAN 10.n.0.0/24 and drops new connections to
// itself, and a host at 10.n.0.2 behind it, which it returns.
func behindNAT(t *testing.T, sw *netns.NS, n int) *netns.NS {
	t.Helper()
	router := onInternet(t, sw, netip.MustParsePrefix(fmt.Sprintf("198.18.0.1%d/24", n)))
	host := newNS(t, "moat-nat-h")
	gw := netip.MustParsePrefix(fmt.Sprintf("10.%d.0.1/24", n))
	if err := netns.Veth(router, "lan0", gw, host, "eth0", netip.MustParsePrefix(fmt.Sprintf("10.%d.0.2/24", n))); err != nil {
		t.Fatal(err)
	}
	if err := host.IP("route", "add", "default", "via", gw.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if out, err := router.Command(t.Context(), "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		t.Fatalf("sysctl in %s: %v: %s", router.Name, err, out)
	}
	// A home router's firewall drops what nobody inside asked for; the
	// drop also keeps conntrack from remembering it, which would make the
	// masquerade pick another port for the inside's reply (a mapping that
	// depends on the destination, which no hole punching gets through).
	nft(t, router, "add table ip moat_nat\n"+
		"add chain ip moat_nat post { type nat hook postrouting priority srcnat; policy accept; }\n"+
		"add rule ip moat_nat post oifname \"ul0\" masquerade\n"+
		"add chain ip moat_nat in { type filter hook input priority filter; policy accept; }\n"+
		"add rule ip moat_nat in iifname \"ul0\" ct state new drop\n")
	return host
}

// newNS makes a namespace that is deleted when the test ends.
func newNS(t *testing.T, prefix string) *netns.NS {
	t.Helper()
	ns, err := netns.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}
