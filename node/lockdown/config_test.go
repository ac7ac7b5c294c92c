package lockdown

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moatmesh/moat/policy"
)

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Scope != ScopeHost || c.MeshInterface != "moat0" || c.WireGuardPort != 51820 || c.GuardPort != 443 ||
		len(c.InferencePorts) != 1 || c.InferencePorts[0] != 11434 || c.LogRate != 10 {
		t.Errorf("defaults: %+v", c)
	}
}

func TestConfigInvalid(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Scope: "everything"}, "unknown scope"},
		{Config{Scope: ScopeService}, "needs ServiceUID, ServiceCgroup, PodCgroups or PodSource"},
		{Config{MeshInterface: "a-very-long-interface-name"}, "not a valid interface name"},
		{Config{InferencePorts: []uint16{443}}, "differ from the guard port"},
		{Config{Coordinator: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.1:0")}}, "nonzero port"},
		{Config{AllowDNS: []netip.Addr{{}}}, "not a plain IP address"},
		{Config{NetworkGrants: []policy.FilterRule{{Ports: []policy.PortRange{{First: 30, Last: 20}}}}}, "is empty"},
	} {
		_, err := tc.cfg.withDefaults()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestKeys(t *testing.T) {
	for _, tc := range []struct {
		key  []byte
		want string
	}{
		{addrKey(netip.MustParseAddr("198.18.0.1")), "198.18.0.1"},
		{addrKey(netip.MustParseAddr("::ffff:198.18.0.1")), "198.18.0.1"},
		{addrKey(netip.MustParseAddr("2001:2::1")), "2001:2::1"},
		{addrPortKey(netip.MustParseAddrPort("198.18.0.1:51820")), "198.18.0.1 . 51820"},
		{addrPortKey(netip.MustParseAddrPort("[2001:2::1]:443")), "2001:2::1 . 443"},
		{portKey(11434), "11434"},
	} {
		if got := formatKey(tc.key); got != tc.want {
			t.Errorf("formatKey(%x) = %q, want %q", tc.key, got, tc.want)
		}
	}
	if n := len(addrPortKey(netip.MustParseAddrPort("198.18.0.1:1"))); n != 8 {
		t.Errorf("IPv4 . port key is %d bytes, want 8", n)
	}
}

func TestPeerElems(t *testing.T) {
	cfg := Config{CoordinatorWireGuard: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.1:51820")}}
	peers := []Peer{
		{Addresses: []netip.Addr{netip.MustParseAddr("198.19.0.4"), netip.MustParseAddr("2001:2:0:1::4")},
			Endpoints: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.4:51820"), netip.MustParseAddrPort("198.18.0.1:51820")}},
	}
	e := wantElems(cfg, dynamic{peers: peers})
	if len(e[setMeshPeers4]) != 1 || len(e[setMeshPeers6]) != 1 || len(e[setEndpoints4]) != 2 || len(e[setEndpoints6]) != 0 {
		t.Errorf("peerElems = %v", e)
	}
	if _, ok := e[setEndpoints6]; !ok {
		t.Error("an empty managed set must still be listed, so UpdatePeers empties it")
	}
	add, del := diffKeys(e[setEndpoints4], [][]byte{addrPortKey(netip.MustParseAddrPort("198.18.0.1:51820"))})
	if len(add) != 0 || len(del) != 1 || formatKey(del[0]) != "198.18.0.4 . 51820" {
		t.Errorf("diff: add %v del %v", add, del)
	}
}

// TestPlanComments checks that every rule says what it does, in the
// form Status shows, and that service scope only adds what it should.
func TestPlanComments(t *testing.T) {
	cfg, _ := Config{ServiceUID: 999, Extra: []netip.Prefix{netip.MustParsePrefix("198.18.7.0/24")}, AllowDHCP: true}.withDefaults()
	p := newPlan(cfg, 0, nil, ifaces{lo: 1, loName: "lo"}, newSets(table()))
	text := ""
	for _, r := range append(p.output, p.input...) {
		if r.comment == "" || strings.Contains(r.comment, `"`) {
			t.Errorf("rule comment %q: want text without double quotes", r.comment)
		}
		text += r.comment + "\n"
	}
	for _, want := range []string{"meta skuid 999 meta oif != 1 (lo)", "ip daddr 198.18.7.0/24 accept", "udp sport 68 dport 67 accept"} {
		if !strings.Contains(text, want) {
			t.Errorf("rules lack %q:\n%s", want, text)
		}
	}
	cfg.Scope = ScopeService
	p = newPlan(cfg, 0, nil, ifaces{lo: 1, loName: "lo"}, newSets(table()))
	if len(p.output) != 1 || len(p.input) != 1 || len(p.forward) != 4 || len(p.prerouting) != 1 {
		t.Errorf("service scope: %d output, %d input, %d forward and %d prerouting rules, want 1, 1, 4 and 1",
			len(p.output), len(p.input), len(p.forward), len(p.prerouting))
	}
}
