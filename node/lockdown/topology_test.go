package lockdown

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/netns"
)

// The test network, all in the benchmarking ranges (198.18.0.0/15 and
// its IPv6 counterpart 2001:2::/48). Four hosts share an underlay bridge;
// the node and the employee are also joined by a veth pair named moat0
// that stands in for the WireGuard interface.
const (
	coordUL = "198.18.0.1"
	nodeUL  = "198.18.0.2"
	inetUL  = "198.18.0.3"
	empUL   = "198.18.0.4"

	coordUL6 = "2001:2::1"
	nodeUL6  = "2001:2::2"
	inetUL6  = "2001:2::3"
	empUL6   = "2001:2::4"

	nodeMesh     = "198.19.0.2"
	empMesh      = "198.19.0.4" // an allowed peer's mesh address
	strangerMesh = "198.19.0.5" // on the mesh link, not a peer
	nodeMesh6    = "2001:2:0:1::2"
	empMesh6     = "2001:2:0:1::4"

	apiPort       = "8080"
	wgPort        = "51820"
	wgPort2       = "51821" // a second endpoint of the peer, first used after it is removed
	guardPort     = "8443"
	inferencePort = "11434"
	grantPort     = "2222"
)

type topology struct {
	coord, node, inet, emp *netns.NS
}

func newNS(t *testing.T, prefix string) *netns.NS {
	t.Helper()
	n, err := netns.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func newTopology(t *testing.T) *topology {
	t.Helper()
	sw := newNS(t, "moat-ld-sw")
	tp := &topology{
		coord: newNS(t, "moat-ld-coord"), node: newNS(t, "moat-ld-node"),
		inet: newNS(t, "moat-ld-inet"), emp: newNS(t, "moat-ld-emp"),
	}
	check(t, netns.Bridge(sw, "br0"))
	check(t, netns.Attach(tp.coord, "eth0", []netip.Prefix{pfx(coordUL + "/24"), pfx(coordUL6 + "/64")}, sw, "br0"))
	check(t, netns.Attach(tp.node, "eth0", []netip.Prefix{pfx(nodeUL + "/24"), pfx(nodeUL6 + "/64")}, sw, "br0"))
	check(t, netns.Attach(tp.inet, "eth0", []netip.Prefix{pfx(inetUL + "/24"), pfx(inetUL6 + "/64")}, sw, "br0"))
	check(t, netns.Attach(tp.emp, "eth0", []netip.Prefix{pfx(empUL + "/24"), pfx(empUL6 + "/64")}, sw, "br0"))
	check(t, netns.Veth(tp.node, "moat0", pfx(nodeMesh+"/24"), tp.emp, "moat0", pfx(empMesh+"/24")))
	check(t, netns.AddAddrs(tp.node, "moat0", pfx(nodeMesh6+"/64")))
	check(t, netns.AddAddrs(tp.emp, "moat0", pfx(strangerMesh+"/24"), pfx(empMesh6+"/64"), pfx("2001:2:0:1::5/64")))
	// Let any user open ICMP ping sockets, so an unprivileged probe is
	// stopped by the lockdown and not by a missing permission.
	run(t, tp.node, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
	return tp
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// run runs a command inside ns and returns its standard output.
func run(t *testing.T, ns *netns.NS, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := ns.Command(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v in %s: %v: %s", name, args, ns.Name, err, errb.String())
	}
	return out.String()
}

// toolsMissing says which of the commands the namespace tests need are
// not installed, or "".
func toolsMissing() string {
	if why := netns.Unavailable(); why != "" {
		return why
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return "needs nftables' `nft` (apt-get install nftables; scripts/deps.sh does it for make test)"
	}
	return ""
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func ap(host, port string) string { return netip.MustParseAddrPort(joinHostPort(host, port)).String() }

func joinHostPort(host, port string) string {
	if netip.MustParseAddr(host).Is6() {
		return "[" + host + "]:" + port
	}
	return host + ":" + port
}
