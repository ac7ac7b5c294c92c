package node

import (
	"log/slog"
	"net/netip"
	"slices"
	"testing"
)

func TestResolveEgress(t *testing.T) {
	n := &Node{log: slog.New(slog.DiscardHandler)}
	nets, ports := n.resolveEgress("jira", []string{"10.2.0.0/16", "192.0.2.7", "127.0.0.1:443", "localhost:80", "no-such-host.invalid:443"})
	if want := []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16"), netip.MustParsePrefix("192.0.2.7/32")}; !slices.Equal(nets, want) {
		t.Errorf("networks = %v, want %v", nets, want)
	}
	if !slices.Contains(ports, netip.MustParseAddrPort("127.0.0.1:443")) || !slices.Contains(ports, netip.MustParseAddrPort("127.0.0.1:80")) {
		t.Errorf("ports = %v, want 127.0.0.1:443 and localhost's :80", ports)
	}
	for _, p := range ports {
		if p.Port() != 443 && p.Port() != 80 {
			t.Errorf("unexpected destination %v (an unresolvable name must add none)", p)
		}
	}
}
