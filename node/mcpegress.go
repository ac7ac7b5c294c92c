package node

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/lockdown"
	"github.com/moatmesh/moat/policy"
)

// mcpEgressSink confines each stdio MCP server's cgroup to what the
// netmap's NodeRules.MCPEgress declares for it; a server it declares
// nothing for may reach nothing but DNS (as from the start, see
// stdioEgress).
type mcpEgressSink struct {
	n *Node
}

func (s mcpEgressSink) SetNetMap(nm *wire.NetMap) error {
	var declared []wire.MCPEgress
	if nm.Rules != nil {
		declared = nm.Rules.MCPEgress
	}
	eg := s.n.stdioEgress()
	for i := range eg {
		j := slices.IndexFunc(declared, func(e wire.MCPEgress) bool { return e.Server == eg[i].Server })
		if j >= 0 {
			eg[i].Allow, eg[i].AllowPorts = s.n.resolveEgress(eg[i].Server, declared[j].Dst)
		}
	}
	return s.n.lock.SetMCPEgress(eg)
}

// stdioEgress is the lockdown entry of each stdio server with nothing
// allowed: what the lockdown starts with, before any netmap.
func (n *Node) stdioEgress() []lockdown.MCPEgress {
	out := make([]lockdown.MCPEgress, 0, len(n.stdio))
	for _, s := range n.stdio {
		out = append(out, lockdown.MCPEgress{Server: s.Name(), Cgroup: s.cgroup})
	}
	return out
}

// resolveEgress turns a server's declared destinations into networks and
// address:port pairs, resolving DNS names now. A name that does not
// resolve is left out (logged): the server cannot reach it.
func (n *Node) resolveEgress(server string, dst []string) (nets []netip.Prefix, ports []netip.AddrPort) {
	for _, d := range dst {
		pfx, hostPort, err := policy.ParseEgress(d)
		if err != nil {
			n.log.Warn("MCP egress destination ignored", "mcp", server, "dst", d, "err", err)
			continue
		}
		if pfx.IsValid() {
			nets = append(nets, pfx)
			continue
		}
		host, p, _ := net.SplitHostPort(hostPort)
		port, _ := netip.ParseAddrPort("0.0.0.0:" + p)
		addrs, err := lookup(host)
		if err != nil {
			n.log.Warn("MCP egress destination does not resolve; the server cannot reach it", "mcp", server, "dst", d, "err", err)
		}
		for _, a := range addrs {
			ports = append(ports, netip.AddrPortFrom(a.Unmap(), port.Port()))
		}
	}
	return nets, ports
}

// lookup resolves host (an IP address is itself).
func lookup(host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
