package lockdown

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Drop categories. Each has a named counter of the same name and a
// regular chain "drop_<category>" that counts, logs and rejects (egress)
// or drops (ingress) what reaches it.
const (
	CatEgressMesh       = "egress_mesh"       // to a mesh address that is not an allowed peer
	CatEgressDNS        = "egress_dns"        // port 53 to a resolver not in AllowDNS
	CatEgressTCP        = "egress_tcp"        // other outbound TCP
	CatEgressUDP        = "egress_udp"        // other outbound UDP
	CatEgressICMP       = "egress_icmp"       // outbound ICMP/ICMPv6 not related to a connection
	CatEgressOther      = "egress_other"      // any other outbound protocol
	CatService          = "service"           // the inference server's packets off loopback
	CatIngressInference = "ingress_inference" // to an inference port from off loopback
	CatIngressMesh      = "ingress_mesh"      // on the mesh interface, not the guard or a grant
	CatIngressOther     = "ingress_other"     // any other inbound packet (host scope)
)

// rule is one rule of a chain, with the comment that Status shows.
type rule struct {
	comment string
	exprs   []expr.Any
}

// plan is the whole table for one Config: which drop categories exist
// and the rules of each base chain.
type plan struct {
	cfg      Config
	cgroupID uint64 // of cfg.ServiceCgroup, resolved by Apply
	sets     map[string]*nftables.Set
	cats     []string
	output   []rule
	input    []rule
}

func newPlan(cfg Config, cgroupID uint64, sets map[string]*nftables.Set) *plan {
	p := &plan{cfg: cfg, cgroupID: cgroupID, sets: sets}
	p.input = p.inferenceInput()
	if cfg.Scope == ScopeService {
		p.output = p.serviceOutput()
		p.cats = []string{CatService, CatIngressInference}
		return p
	}
	p.output = concatRules(p.hostOutputHead(), p.serviceOutput(), p.hostOutputAllow(), p.egressDrops())
	p.input = concatRules(p.input, p.hostInput())
	p.cats = []string{CatEgressMesh, CatEgressDNS, CatEgressTCP, CatEgressUDP, CatEgressICMP, CatEgressOther,
		CatIngressInference, CatIngressMesh, CatIngressOther}
	if p.hasService() {
		p.cats = append(p.cats, CatService)
	}
	return p
}

func (p *plan) hasService() bool { return p.cfg.ServiceUID != 0 || p.cfg.ServiceCgroup != "" }

func concatRules(parts ...[]rule) []rule {
	var out []rule
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func accept(comment string, parts ...[]expr.Any) rule {
	return rule{comment, append(concat(parts...), verdict(expr.VerdictAccept))}
}

func toDrop(cat, comment string, parts ...[]expr.Any) rule {
	return rule{comment, append(concat(parts...), jump("drop_"+cat))}
}

// serviceOutput restricts the inference server to loopback. It comes
// before "established" so that even replies cannot leave the host.
func (p *plan) serviceOutput() []rule {
	var out []rule
	notLo := ifIs(false, "lo", true)
	if uid := p.cfg.ServiceUID; uid != 0 {
		out = append(out, toDrop(CatService, fmt.Sprintf("meta skuid %d oifname != lo: the inference server may use loopback only", uid),
			skuid(uid), notLo))
	}
	if cg := p.cfg.ServiceCgroup; cg != "" {
		level, id := cgroupLevel(cg), p.cgroupID
		out = append(out, toDrop(CatService, fmt.Sprintf("socket cgroupv2 level %d %s oifname != lo: the inference server may use loopback only", level, cg),
			cgroupv2(level, id), notLo))
	}
	return out
}

func (p *plan) hostOutputHead() []rule {
	return []rule{
		accept("oifname lo accept: loopback", ifIs(false, "lo", false)),
	}
}

func (p *plan) hostOutputAllow() []rule {
	c, mesh := p.cfg, p.cfg.MeshInterface
	// Mesh rules come before "established" so that removing a peer cuts
	// its open connections at once; neighbour discovery before them so
	// that IPv6 works on a mesh link that needs it.
	out := []rule{
		p.neighbourDiscovery(),
		accept(fmt.Sprintf("oifname %s ip daddr @%s accept: mesh peers", mesh, setMeshPeers4),
			ifIs(false, mesh, false), nfproto(false), addrIn(false, false, p.sets[setMeshPeers4])),
		accept(fmt.Sprintf("oifname %s ip6 daddr @%s accept: mesh peers", mesh, setMeshPeers6),
			ifIs(false, mesh, false), nfproto(true), addrIn(true, false, p.sets[setMeshPeers6])),
		toDrop(CatEgressMesh, fmt.Sprintf("oifname %s: no other mesh destination", mesh), ifIs(false, mesh, false)),
		accept("ct state established,related accept", ctEstablished()),
	}
	out = append(out, p.underlay(false)...)
	out = append(out, p.underlay(true)...)
	for _, pfx := range c.Extra {
		ip, _ := ipWord(pfx.Addr().Is6())
		out = append(out, accept(fmt.Sprintf("%s daddr %v accept: admin extra", ip, pfx.Masked()), addrPrefix(pfx, false)))
	}
	return append(out, p.dhcp(false)...)
}

// underlay allows WireGuard to its endpoints, the coordinator API, the
// resolvers and the admin's extra destinations, for one IP family.
func (p *plan) underlay(v6 bool) []rule {
	c := p.cfg
	ip, sfx := ipWord(v6)
	out := []rule{
		accept(fmt.Sprintf("%s daddr . udp dport @wg_endpoints%s udp sport %d accept: WireGuard underlay", ip, sfx, c.WireGuardPort),
			nfproto(v6), l4proto(unix.IPPROTO_UDP), sport(c.WireGuardPort), daddrPortIn(v6, p.sets["wg_endpoints"+sfx])),
		accept(fmt.Sprintf("%s daddr . tcp dport @coordinator%s accept: coordinator API", ip, sfx),
			nfproto(v6), l4proto(unix.IPPROTO_TCP), daddrPortIn(v6, p.sets["coordinator"+sfx])),
	}
	for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		pw := protoWord(proto)
		out = append(out,
			accept(fmt.Sprintf("%s daddr @dns%s %s dport 53 accept: resolvers", ip, sfx, pw),
				nfproto(v6), l4proto(proto), dport(53), addrIn(v6, false, p.sets["dns"+sfx])),
			accept(fmt.Sprintf("%s daddr . %s dport @extra_ports%s accept: admin extras", ip, pw, sfx),
				nfproto(v6), l4proto(proto), daddrPortIn(v6, p.sets["extra_ports"+sfx])))
	}
	return out
}

func (p *plan) egressDrops() []rule {
	return []rule{
		toDrop(CatEgressDNS, "udp dport 53: other resolvers", l4proto(unix.IPPROTO_UDP), dport(53)),
		toDrop(CatEgressDNS, "tcp dport 53: other resolvers", l4proto(unix.IPPROTO_TCP), dport(53)),
		toDrop(CatEgressTCP, "meta l4proto tcp", l4proto(unix.IPPROTO_TCP)),
		toDrop(CatEgressUDP, "meta l4proto udp", l4proto(unix.IPPROTO_UDP)),
		toDrop(CatEgressICMP, "meta l4proto icmp", l4proto(unix.IPPROTO_ICMP)),
		toDrop(CatEgressICMP, "meta l4proto ipv6-icmp", l4proto(unix.IPPROTO_ICMPV6)),
		toDrop(CatEgressOther, "everything else"),
	}
}

// neighbourDiscovery keeps IPv6 working: router and neighbour
// solicitations and advertisements (ICMPv6 types 133-136).
func (p *plan) neighbourDiscovery() rule {
	return accept("icmpv6 type 133-136 accept: IPv6 neighbour discovery",
		nfproto(true), l4proto(unix.IPPROTO_ICMPV6), icmp6Type(133, 136))
}

// dhcp lets DHCP clients renew (out: 68→67, 546→547; in: the reverse).
func (p *plan) dhcp(in bool) []rule {
	if !p.cfg.AllowDHCP {
		return nil
	}
	ports := [][2]uint16{{68, 67}, {546, 547}}
	var out []rule
	for i, pp := range ports {
		src, dst := pp[0], pp[1]
		if in {
			src, dst = dst, src
		}
		out = append(out, accept(fmt.Sprintf("udp sport %d dport %d accept: DHCP", src, dst),
			nfproto(i == 1), l4proto(unix.IPPROTO_UDP), sport(src), dport(dst)))
	}
	return out
}

func ipWord(v6 bool) (word, suffix string) {
	if v6 {
		return "ip6", "6"
	}
	return "ip", "4"
}

func protoWord(p byte) string {
	if p == unix.IPPROTO_TCP {
		return "tcp"
	}
	return "udp"
}
