package lockdown

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// inferencePrerouting drops packets for an inference port that did not
// come from loopback before the nat hook runs, so that a DNAT-published
// port (docker run -p 11434:11434) cannot forward them to a container.
func (p *plan) inferencePrerouting() []rule {
	return p.inferenceDrop("inference ports, before DNAT")
}

// upstreamForward boxes the inference containers in, in both scopes:
// nothing they send is forwarded, and nothing from elsewhere reaches
// them (the host reaches them directly, not by forwarding).
func (p *plan) upstreamForward() []rule {
	var out []rule
	for _, v6 := range []bool{false, true} {
		ip, sfx := ipWord(v6)
		out = append(out,
			toDrop(CatForward, fmt.Sprintf("%s saddr @upstream_addrs%s: the inference containers' own egress", ip, sfx),
				nfproto(v6), addrIn(v6, true, p.sets["upstream_addrs"+sfx])),
			toDrop(CatForward, fmt.Sprintf("%s daddr @upstream_addrs%s: only the host reaches the inference containers", ip, sfx),
				nfproto(v6), addrIn(v6, false, p.sets["upstream_addrs"+sfx])))
	}
	return out
}

// hostForward drops forwarded traffic (from containers and namespaces
// behind the node, DNAT'd or masqueraded) unless its destination is in
// Forward.
func (p *plan) hostForward() []rule {
	out := []rule{accept("ct state established,related accept", ctEstablished())}
	for _, v6 := range []bool{false, true} {
		ip, sfx := ipWord(v6)
		for _, proto := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			out = append(out, accept(fmt.Sprintf("%s daddr . %s dport @forward%s accept: allowed forward destination", ip, protoWord(proto), sfx),
				nfproto(v6), l4proto(proto), daddrPortIn(v6, p.sets["forward"+sfx])))
		}
	}
	return append(out, toDrop(CatForward, "everything else forwarded"))
}
