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
	CatEgressMesh       = "egress_mesh"       // on the mesh, not to a peer on what the policy grants
	CatEgressDNS        = "egress_dns"        // port 53 to a resolver not in AllowDNS
	CatEgressTCP        = "egress_tcp"        // other outbound TCP
	CatEgressUDP        = "egress_udp"        // other outbound UDP, including the WireGuard port to a non-endpoint
	CatEgressICMP       = "egress_icmp"       // outbound ICMP/ICMPv6 not related to a connection, and crafted ND
	CatEgressOther      = "egress_other"      // any other outbound protocol
	CatService          = "service"           // the inference server's packets off loopback
	CatForward          = "forward"           // forwarded traffic (containers, namespaces behind the node)
	CatIngressInference = "ingress_inference" // to an inference port from off loopback
	CatIngressMesh      = "ingress_mesh"      // on the mesh interface, not the guard or a grant
	CatIngressOther     = "ingress_other"     // any other inbound packet (host scope)
	CatEgressPacket     = "egress_packet"     // frames from packet sockets (table netdev moat)
)

// rule is one rule of a chain, with the comment that Status shows.
type rule struct {
	comment string
	exprs   []expr.Any
}

// plan is the whole inet table for one Config: which drop categories
// exist and the rules of each base chain.
type plan struct {
	cfg        Config
	cgroupID   uint64      // of cfg.ServiceCgroup, resolved by Apply
	pods       []podCgroup // cfg.PodCgroups' matches
	ifs        ifaces
	sets       map[string]*nftables.Set
	cats       []string
	output     []rule
	input      []rule
	forward    []rule
	prerouting []rule
}

func newPlan(cfg Config, cgroupID uint64, pods []podCgroup, ifs ifaces, sets map[string]*nftables.Set) *plan {
	p := &plan{cfg: cfg, cgroupID: cgroupID, pods: pods, ifs: ifs, sets: sets}
	p.prerouting = p.inferencePrerouting()
	p.input = p.inferenceInput()
	p.forward = p.upstreamForward()
	defer p.addMCPCategory()
	if cfg.Scope == ScopeService {
		p.output = concatRules(p.mcpOutput(), p.podOutput(), p.serviceOutput())
		p.cats = []string{CatService, CatIngressInference, CatForward}
		return p
	}
	p.output = concatRules(p.mcpOutput(), p.podOutput(), p.hostOutputHead(), p.serviceOutput(), p.neighbourDiscoveryOut(),
		p.wireGuardOut(), p.meshOutput(), p.hostOutputAllow(), p.egressDrops())
	p.input = concatRules(p.input, p.hostInput())
	p.forward = concatRules(p.forward, p.hostForward())
	p.cats = []string{CatEgressMesh, CatEgressDNS, CatEgressTCP, CatEgressUDP, CatEgressICMP, CatEgressOther,
		CatForward, CatIngressInference, CatIngressMesh, CatIngressOther}
	if p.hasService() {
		p.cats = append(p.cats, CatService)
	}
	return p
}

func (p *plan) hasService() bool {
	return p.cfg.ServiceUID != 0 || p.cfg.ServiceCgroup != "" || len(p.cfg.PodCgroups) > 0 || p.cfg.PodSource != nil
}

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

// lo matches the loopback interface by index; loWord names it.
func (p *plan) lo(in bool, neg bool) []expr.Any { return ifIndexIs(in, p.ifs.lo, neg) }

func (p *plan) loWord(in bool, neg bool) string {
	return fmt.Sprintf("meta %s %s %d (%s)", ifWord(in, false), cmpWord(neg), p.ifs.lo, p.ifs.loName)
}

// mesh matches the mesh interface by index once it exists, by name
// before that.
func (p *plan) mesh(in bool) []expr.Any {
	if p.ifs.mesh != 0 {
		return ifIndexIs(in, p.ifs.mesh, false)
	}
	return ifIs(in, p.cfg.MeshInterface, false)
}

func (p *plan) meshWord(in bool) string {
	if p.ifs.mesh != 0 {
		return fmt.Sprintf("meta %s %d (%s)", ifWord(in, false), p.ifs.mesh, p.cfg.MeshInterface)
	}
	return ifWord(in, true) + " " + p.cfg.MeshInterface
}

func ifWord(in, name bool) string {
	w := "oif"
	if in {
		w = "iif"
	}
	if name {
		w += "name"
	}
	return w
}

func cmpWord(neg bool) string {
	if neg {
		return "!="
	}
	return "=="
}

// serviceOutput restricts the inference server to loopback. It comes
// before "established" so that even replies cannot leave the host.
func (p *plan) serviceOutput() []rule {
	var out []rule
	notLo, notLoWord := p.lo(false, true), p.loWord(false, true)
	if uid := p.cfg.ServiceUID; uid != 0 {
		out = append(out, toDrop(CatService, fmt.Sprintf("meta skuid %d %s: the inference server may use loopback only", uid, notLoWord),
			skuid(uid), notLo))
	}
	if cg := p.cfg.ServiceCgroup; cg != "" {
		level, id := cgroupLevel(cg), p.cgroupID
		out = append(out, toDrop(CatService, fmt.Sprintf("socket cgroupv2 level %d %s %s: the inference server may use loopback only", level, cg, notLoWord),
			cgroupv2(level, id), notLo))
	}
	return out
}

func (p *plan) hostOutputHead() []rule {
	return []rule{accept(p.loWord(false, false)+" accept: loopback, by index", p.lo(false, false))}
}

// wireGuardOut lets the WireGuard port send to the current endpoints
// only, before "established": a datagram anyone sent to the port must
// not open a reply path to wherever it came from.
func (p *plan) wireGuardOut() []rule {
	wg := p.cfg.WireGuardPort
	var out []rule
	for _, v6 := range []bool{false, true} {
		ip, sfx := ipWord(v6)
		out = append(out, accept(fmt.Sprintf("%s daddr . udp dport @wg_endpoints%s udp sport %d accept: WireGuard underlay", ip, sfx, wg),
			nfproto(v6), l4proto(unix.IPPROTO_UDP), sport(wg), daddrPortIn(v6, p.sets["wg_endpoints"+sfx])))
	}
	return append(out, toDrop(CatEgressUDP, fmt.Sprintf("udp sport %d: the WireGuard port sends to current endpoints only", wg),
		l4proto(unix.IPPROTO_UDP), sport(wg)))
}

func (p *plan) hostOutputAllow() []rule {
	out := []rule{accept("ct state established,related accept", ctEstablished())}
	out = append(out, p.underlay(false)...)
	out = append(out, p.underlay(true)...)
	for _, pfx := range p.cfg.Extra {
		ip, _ := ipWord(pfx.Addr().Is6())
		out = append(out, accept(fmt.Sprintf("%s daddr %v accept: admin extra", ip, pfx.Masked()), addrPrefix(pfx, false)))
	}
	return append(out, p.dhcp(false)...)
}

// underlay allows the coordinator API (to CoordinatorUIDs' sockets if
// set), the resolvers, NTP, the container upstreams and the admin's
// extra destinations, for one IP family.
func (p *plan) underlay(v6 bool) []rule {
	ip, sfx := ipWord(v6)
	var out []rule
	coord := concat(nfproto(v6), l4proto(unix.IPPROTO_TCP), daddrPortIn(v6, p.sets["coordinator"+sfx]))
	coordWord := fmt.Sprintf("%s daddr . tcp dport @coordinator%s", ip, sfx)
	if len(p.cfg.CoordinatorUIDs) == 0 {
		out = append(out, accept(coordWord+" accept: coordinator API", coord))
	}
	for _, uid := range p.cfg.CoordinatorUIDs {
		out = append(out, accept(fmt.Sprintf("%s meta skuid %d accept: coordinator API, allowed user", coordWord, uid), coord, skuid(uid)))
	}
	out = append(out,
		accept(fmt.Sprintf("%s daddr @ntp%s udp dport 123 accept: time servers", ip, sfx),
			nfproto(v6), l4proto(unix.IPPROTO_UDP), dport(123), addrIn(v6, false, p.sets["ntp"+sfx])),
		accept(fmt.Sprintf("%s daddr . tcp dport @upstreams%s accept: inference servers in containers", ip, sfx),
			nfproto(v6), l4proto(unix.IPPROTO_TCP), daddrPortIn(v6, p.sets["upstreams"+sfx])))
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

// dhcp lets DHCP clients renew (out: 68→67, and 546→547 to link-local
// and multicast addresses only; in: the reverse).
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
		match := concat(nfproto(i == 1), l4proto(unix.IPPROTO_UDP), sport(src), dport(dst))
		word := fmt.Sprintf("udp sport %d dport %d", src, dst)
		if i == 1 && !in {
			for _, to := range []string{"fe80::/10", "ff02::/16"} {
				out = append(out, accept(fmt.Sprintf("%s ip6 daddr %s accept: DHCPv6", word, to), match, addrPrefix(mustPrefix(to), false)))
			}
			continue
		}
		out = append(out, accept(word+" accept: DHCP", match))
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
