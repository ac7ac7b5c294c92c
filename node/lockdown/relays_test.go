package lockdown

import (
	"net/netip"
	"slices"
	"testing"
)

// TestHostRelays: the relays a moat node's netmap names (SetRelays) are
// reachable over TCP at their port, as the coordinator's API is, and no
// longer once the netmap stops naming them; nothing else on their hosts
// is.
func TestHostRelays(t *testing.T) {
	t.Parallel()
	h := startHosts(t)
	h.inet.must(t, "listen tcp :443")
	runProbes(t, []probeCase{
		{h.node, "tcp " + ap(inetUL, "80"), true},
		{h.node, "tcp " + ap(inetUL, "443"), true},
	})
	h.node.must(t, "apply "+mustJSON(hostConfig()))
	runProbes(t, []probeCase{
		{h.node, "tcp " + ap(inetUL, "80"), false},
		{h.node, "tcp " + ap(inetUL, "443"), false},
	})

	h.node.must(t, "relays https://"+ap(inetUL, "80")+"/derp https://"+inetUL+"/derp")
	h.waitSet(t, setCoordinator4, inetUL+" . 80", true)
	runProbes(t, []probeCase{
		{h.node, "tcp " + ap(inetUL, "80"), true},
		{h.node, "tcp " + ap(inetUL, "443"), true}, // no port: 443
		{h.node, "udp " + ap(inetUL, "9999"), false},
		{h.node, "tcp " + ap(inetUL, "53"), false},
		{h.node, "tcp " + ap(coordUL, apiPort), true}, // the coordinator stays
	})

	h.node.must(t, "relays https://"+inetUL+"/derp")
	h.waitSet(t, setCoordinator4, inetUL+" . 80", false)
	runProbes(t, []probeCase{
		{h.node, "tcp " + ap(inetUL, "80"), false},
		{h.node, "tcp " + ap(inetUL, "443"), true},
	})
	if got := h.node.ask(t, "relays https://relay.invalid/derp"); got == "ok" {
		t.Errorf("a relay whose name does not resolve: %q, want an error", got)
	}
	runProbes(t, []probeCase{{h.node, "tcp " + ap(inetUL, "443"), false}})
	h.node.must(t, "off")
}

// TestUnionAddrPorts: when some relay names fail to resolve, Resolve
// keeps their last addresses and adds what the others resolve to now.
func TestUnionAddrPorts(t *testing.T) {
	a, b, c := netip.MustParseAddrPort("192.0.2.1:443"), netip.MustParseAddrPort("192.0.2.2:443"), netip.MustParseAddrPort("[2001:db8::1]:443")
	got := unionAddrPorts([]netip.AddrPort{a, b}, []netip.AddrPort{b, c})
	if want := []netip.AddrPort{a, b, c}; !slices.Equal(got, want) {
		t.Fatalf("union %v, want %v", got, want)
	}
}
