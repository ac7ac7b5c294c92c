package node

import (
	"net/netip"
	"slices"
	"testing"
)

// --endpoint addresses are advertised first, before the configured or
// discovered ones.
func TestExtraEndpointsFirst(t *testing.T) {
	extra := netip.MustParseAddrPort("203.0.113.7:41641")
	local := netip.MustParseAddrPort("10.0.0.5:41641")
	n := &Node{cfg: Config{ExtraEndpoints: []netip.AddrPort{extra}, Endpoints: []netip.AddrPort{local}}}
	if got := n.endpoints(); !slices.Equal(got, []netip.AddrPort{extra, local}) {
		t.Fatalf("endpoints = %v, want the extra one, then the configured one", got)
	}
	n.cfg.Endpoints, n.cfg.ListenPort = nil, 41641
	if got := n.endpoints(); len(got) == 0 || got[0] != extra {
		t.Fatalf("endpoints = %v, want the extra one first, then the interfaces'", got)
	}
}
