package lockdown

import (
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"
)

// CatEgressMCP counts what a stdio MCP server sent to a destination its
// policy entry does not declare.
const CatEgressMCP = "egress_mcp"

// MCPEgress confines one stdio MCP server, matched by its cgroup, to the
// destinations its policy entry declares (in either scope, before
// everything else the node may reach): besides these, only DNS (to the
// AllowDNS resolvers, and port 53 on loopback for a local stub resolver)
// and replies on its own connections. Everything else it sends is
// rejected (counted as CatEgressMCP) before a frame leaves.
type MCPEgress struct {
	// Server names it in rule comments.
	Server string `json:"server"`
	// Cgroup is its cgroup v2 path relative to the cgroup2 mount, e.g.
	// "system.slice/moat-node.service/mcp-jira". It must exist.
	Cgroup string `json:"cgroup"`
	// Allow lists networks it may reach on any port. Default: none.
	Allow []netip.Prefix `json:"allow,omitempty"`
	// AllowPorts lists addresses and ports (TCP and UDP) it may reach.
	// Default: none.
	AllowPorts []netip.AddrPort `json:"allowPorts,omitempty"`

	id uint64 // of Cgroup, resolved when applied
}

func (e MCPEgress) equal(o MCPEgress) bool {
	return e.Server == o.Server && e.Cgroup == o.Cgroup && slices.Equal(e.Allow, o.Allow) && slices.Equal(e.AllowPorts, o.AllowPorts)
}

// checkMCPEgress validates the entries.
func checkMCPEgress(eg []MCPEgress) []error {
	var errs []error
	for _, e := range eg {
		if e.Cgroup == "" {
			errs = append(errs, fmt.Errorf("MCP server %q: egress without a cgroup", e.Server))
		}
		errs = append(errs, checkAddrPorts("MCP server "+e.Server+" destination", e.AllowPorts)...)
		for _, p := range e.Allow {
			if !p.IsValid() {
				errs = append(errs, fmt.Errorf("MCP server %q: invalid destination network", e.Server))
			}
		}
	}
	return errs
}

// resolveMCPCgroups fills in each entry's cgroup id.
func resolveMCPCgroups(eg []MCPEgress) ([]MCPEgress, error) {
	out := slices.Clone(eg)
	for i := range out {
		id, err := cgroupID(out[i].Cgroup)
		if err != nil {
			return nil, fmt.Errorf("MCP server %s: %w", out[i].Server, err)
		}
		out[i].id = id
	}
	return out, nil
}

// SetMCPEgress replaces Config.MCPEgress and re-applies the tables in one
// atomic batch when they differ. Nothing changes, and the error says why,
// if a cgroup is missing or the batch fails.
func (l *Lockdown) SetMCPEgress(eg []MCPEgress) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if slices.EqualFunc(eg, l.cfg.MCPEgress, MCPEgress.equal) {
		return nil
	}
	next := l.cfg
	next.MCPEgress = eg
	if err := next.validate(); err != nil {
		return fmt.Errorf("lockdown: MCP egress: %w", err)
	}
	var err error
	if next.MCPEgress, err = resolveMCPCgroups(eg); err != nil {
		return fmt.Errorf("lockdown: %w", err)
	}
	prev := l.cfg
	l.cfg = next
	if err := l.installLocked(); err != nil {
		l.cfg = prev
		return err
	}
	return nil
}

// mcpOutput is the output rules of Config.MCPEgress, first in the chain.
func (p *plan) mcpOutput() []rule {
	var out []rule
	for _, e := range p.cfg.MCPEgress {
		level := cgroupLevel(e.Cgroup)
		cg := cgroupv2(level, e.id)
		who := fmt.Sprintf("socket cgroupv2 level %d %s", level, e.Cgroup)
		what := "MCP server " + e.Server
		out = append(out, accept(fmt.Sprintf("%s ct state established,related accept: %s, its connections", who, what), cg, ctEstablished()))
		for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
			pw := protoWord(proto)
			out = append(out, accept(fmt.Sprintf("%s %s %s dport 53 accept: %s, a local resolver", who, p.loWord(false, false), pw, what),
				cg, p.lo(false, false), l4proto(proto), dport(53)))
			for _, v6 := range []bool{false, true} {
				ip, sfx := ipWord(v6)
				out = append(out, accept(fmt.Sprintf("%s %s daddr @dns%s %s dport 53 accept: %s, resolvers", who, ip, sfx, pw, what),
					cg, nfproto(v6), l4proto(proto), dport(53), addrIn(v6, false, p.sets["dns"+sfx])))
			}
			for _, ap := range e.AllowPorts {
				a := ap.Addr().Unmap()
				ip, _ := ipWord(a.Is6())
				out = append(out, accept(fmt.Sprintf("%s %s daddr %s %s dport %d accept: %s, declared", who, ip, a, pw, ap.Port(), what),
					cg, addrPrefix(netip.PrefixFrom(a, a.BitLen()), false), l4proto(proto), dport(ap.Port())))
			}
		}
		for _, pfx := range e.Allow {
			ip, _ := ipWord(pfx.Addr().Is6())
			out = append(out, accept(fmt.Sprintf("%s %s daddr %s accept: %s, declared", who, ip, pfx.Masked(), what), cg, addrPrefix(pfx.Masked(), false)))
		}
		out = append(out, toDrop(CatEgressMCP, fmt.Sprintf("%s: %s may reach only what its policy entry declares", who, what), cg))
	}
	return out
}

// addMCPCategory adds CatEgressMCP's counter and chain when some MCP
// server is confined.
func (p *plan) addMCPCategory() {
	if len(p.cfg.MCPEgress) > 0 {
		p.cats = append(p.cats, CatEgressMCP)
	}
}
