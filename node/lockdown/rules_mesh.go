package lockdown

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// neighbourDiscoveryOut keeps IPv6 working without letting a process
// carry data in neighbour discovery: the kernel's own ND (ICMPv6
// 133-136, hop limit 255) and MLD reports (hop limit 1, link-scope
// multicast) pass; from a process's socket only a plain router
// solicitation to all-routers does (systemd-networkd sends its own).
// The kernel's packets have no socket file, so `meta skuid` does not
// load for them.
func (p *plan) neighbourDiscoveryOut() []rule {
	nd := concat(nfproto(true), l4proto(unix.IPPROTO_ICMPV6))
	return []rule{
		accept("icmpv6 type nd-router-solicit ip6 hoplimit 255 ip6 daddr ff02::2 ip6 length <= 16 accept: a process's router solicitation",
			nd, icmp6Type(133, 133), hopLimit(255), addrPrefix(mustPrefix("ff02::2/128"), false), payloadLenAtMost(16)),
		toDrop(CatEgressICMP, "icmpv6 type 130-136 meta skuid exists: neighbour discovery and MLD from a process",
			nd, icmp6Type(130, 136), present(expr.MetaKeySKUID)),
		toDrop(CatEgressICMP, "icmpv6 type 143 meta skuid exists: MLDv2 reports from a process",
			nd, icmp6Type(143, 143), present(expr.MetaKeySKUID)),
		accept("icmpv6 type 133-136 ip6 hoplimit 255 accept: the kernel's neighbour discovery",
			nd, icmp6Type(133, 136), hopLimit(255)),
		accept("icmpv6 type 131-132 ip6 hoplimit 1 ip6 daddr ff02::/16 accept: the kernel's MLD reports",
			nd, icmp6Type(131, 132), hopLimit(1), addrPrefix(mustPrefix("ff02::/16"), false)),
		accept("icmpv6 type 143 ip6 hoplimit 1 ip6 daddr ff02::/16 accept: the kernel's MLDv2 reports",
			nd, icmp6Type(143, 143), hopLimit(1), addrPrefix(mustPrefix("ff02::/16"), false)),
	}
}

// neighbourDiscoveryIn admits neighbour discovery as RFC 4861 sends it
// (hop limit 255) and MLD queries (hop limit 1).
func (p *plan) neighbourDiscoveryIn() []rule {
	nd := concat(nfproto(true), l4proto(unix.IPPROTO_ICMPV6))
	return []rule{
		accept("icmpv6 type 133-136 ip6 hoplimit 255 accept: IPv6 neighbour discovery", nd, icmp6Type(133, 136), hopLimit(255)),
		accept("icmpv6 type mld-listener-query ip6 hoplimit 1 accept: MLD queries", nd, icmp6Type(130, 130), hopLimit(1)),
	}
}

// meshOutput lets local processes reach current peers only: replies
// to what the guard and the grants let in, and new connections where
// MeshEgress allows them. A peer that leaves the netmap is cut at once,
// open connections included.
func (p *plan) meshOutput() []rule {
	mesh, word := p.mesh(false), p.meshWord(false)
	var out []rule
	for _, v6 := range []bool{false, true} {
		ip, sfx := ipWord(v6)
		out = append(out, toDrop(CatEgressMesh, fmt.Sprintf("%s %s daddr != @mesh_peers%s: not a peer", word, ip, sfx),
			mesh, nfproto(v6), addrNotIn(v6, false, p.sets["mesh_peers"+sfx])))
	}
	out = append(out, accept(word+" ct state established,related accept: replies to the guard and the grants", mesh, ctEstablished()))
	for _, m := range p.cfg.MeshEgress {
		for _, dst := range m.Dst {
			out = append(out, p.meshEgress(dst, m)...)
		}
	}
	return append(out, toDrop(CatEgressMesh, word+": nothing else on the mesh", mesh))
}

func (p *plan) meshEgress(dst netip.Prefix, m MeshRule) []rule {
	var out []rule
	ip, _ := ipWord(dst.Addr().Is6())
	for _, r := range m.Ports {
		for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			out = append(out, accept(fmt.Sprintf("%s %s daddr %v %s dport %s accept: mesh egress the policy grants",
				p.meshWord(false), ip, dst.Masked(), protoWord(proto), portRange(r.First, r.Last)),
				p.mesh(false), addrPrefix(dst, false), l4proto(proto), dportRange(r.First, r.Last)))
		}
	}
	return out
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
