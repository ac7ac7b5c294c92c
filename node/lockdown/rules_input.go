package lockdown

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// inferenceInput keeps the inference ports loopback-only, in both
// scopes, whatever else a grant or another table would allow.
func (p *plan) inferenceInput() []rule {
	return p.inferenceDrop("inference servers are loopback-only")
}

func (p *plan) inferenceDrop(why string) []rule {
	return []rule{toDrop(CatIngressInference,
		fmt.Sprintf("%s tcp dport @%s: %s", p.loWord(true, true), setInference, why),
		p.lo(true, true), l4proto(unix.IPPROTO_TCP), dportIn(p.sets[setInference]))}
}

// hostInput admits WireGuard, replies, and on the mesh interface the
// guard and the network grants from current peers; it drops the rest.
func (p *plan) hostInput() []rule {
	c, mesh, word := p.cfg, p.mesh(true), p.meshWord(true)
	out := append([]rule{accept(p.loWord(true, false)+" accept: loopback, by index", p.lo(true, false))},
		p.neighbourDiscoveryIn()...)
	// Before "established": a removed peer's open connections are cut.
	for _, v6 := range []bool{false, true} {
		ip, sfx := ipWord(v6)
		out = append(out, toDrop(CatIngressMesh, fmt.Sprintf("%s %s saddr != @mesh_peers%s: not a peer", word, ip, sfx),
			mesh, nfproto(v6), addrNotIn(v6, true, p.sets["mesh_peers"+sfx])))
	}
	out = append(out,
		accept("ct state established,related accept", ctEstablished()),
		accept(fmt.Sprintf("udp dport %d accept: WireGuard", c.WireGuardPort), l4proto(unix.IPPROTO_UDP), dport(c.WireGuardPort)))
	for _, v6 := range []bool{false, true} {
		ip, sfx := ipWord(v6)
		out = append(out, accept(fmt.Sprintf("%s %s saddr @mesh_peers%s tcp dport %d accept: the guard", word, ip, sfx, c.GuardPort),
			mesh, nfproto(v6), addrIn(v6, true, p.sets["mesh_peers"+sfx]),
			l4proto(unix.IPPROTO_TCP), dport(c.GuardPort)))
	}
	out = append(out, p.grants()...)
	out = append(out, p.dhcp(true)...)
	return append(out,
		toDrop(CatIngressMesh, word+": nothing else on the mesh", mesh),
		toDrop(CatIngressOther, "everything else"))
}

// grants turns the policy's mesh filter into rules: from the rule's
// source prefix, if the source is also a current peer, to its ports.
func (p *plan) grants() []rule {
	var out []rule
	for _, g := range p.cfg.NetworkGrants {
		for _, src := range g.Src {
			v6 := src.Addr().Is6()
			ip, sfx := ipWord(v6)
			for _, r := range g.Ports {
				for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
					out = append(out, accept(fmt.Sprintf("%s %s saddr %v %s saddr @mesh_peers%s %s dport %s accept: network grant",
						p.meshWord(true), ip, src.Masked(), ip, sfx, protoWord(proto), portRange(r.First, r.Last)),
						p.mesh(true), addrPrefix(src, true), addrIn(v6, true, p.sets["mesh_peers"+sfx]),
						l4proto(proto), dportRange(r.First, r.Last)))
				}
			}
		}
	}
	return out
}

func portRange(first, last uint16) string {
	if first == last {
		return fmt.Sprint(first)
	}
	return fmt.Sprintf("%d-%d", first, last)
}

// dportIn is `th dport @set`.
func dportIn(set *nftables.Set) []expr.Any {
	return []expr.Any{dportField(reg1), &expr.Lookup{SourceRegister: reg1, SetName: set.Name, SetID: set.ID}}
}
