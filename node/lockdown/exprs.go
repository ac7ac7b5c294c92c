package lockdown

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// This file holds small builders of nftables expressions; each returns
// the expressions for one `nft` match so rules read like nft syntax.

// Registers as nft uses them: reg 1 for a value, reg 9 for the second
// part of an IPv4 concatenation, reg 2 for the second part of an IPv6 one.
const (
	reg1       = 1
	regConcat4 = 9
	regConcat6 = 2
)

func cmpEq(data []byte) *expr.Cmp {
	return &expr.Cmp{Op: expr.CmpOpEq, Register: reg1, Data: data}
}

func ifname(name string) []byte {
	b := make([]byte, 16)
	copy(b, name)
	return b
}

// ifIs is `iifname NAME` (in) or `oifname NAME`; neg makes it `!=`.
func ifIs(in bool, name string, neg bool) []expr.Any {
	return ifCmp(in, true, neg, ifname(name))
}

// ifIndexIs is `meta iif INDEX` (in) or `meta oif INDEX`; neg makes it
// `!=`. Unlike a name, an index cannot be given to another interface.
func ifIndexIs(in bool, index int, neg bool) []expr.Any {
	return ifCmp(in, false, neg, binaryutil.NativeEndian.PutUint32(uint32(index)))
}

func ifCmp(in, byName, neg bool, data []byte) []expr.Any {
	key := map[[2]bool]expr.MetaKey{
		{false, false}: expr.MetaKeyOIF, {true, false}: expr.MetaKeyIIF,
		{false, true}: expr.MetaKeyOIFNAME, {true, true}: expr.MetaKeyIIFNAME,
	}[[2]bool{in, byName}]
	op := expr.CmpOpEq
	if neg {
		op = expr.CmpOpNeq
	}
	return []expr.Any{&expr.Meta{Key: key, Register: reg1}, &expr.Cmp{Op: op, Register: reg1, Data: data}}
}

// present is `meta KEY >= 0`: it matches whenever the kernel can load
// KEY at all, so `meta skuid` present means "sent by a process's
// socket" and `meta rtclassid` present means "routed by the stack".
func present(key expr.MetaKey) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: reg1},
		&expr.Cmp{Op: expr.CmpOpGte, Register: reg1, Data: []byte{0, 0, 0, 0}}}
}

// hopLimit is `ip6 hoplimit N` (nfproto ipv6 first).
func hopLimit(n byte) []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 7, Len: 1}, cmpEq([]byte{n})}
}

// payloadLenAtMost is `ip6 length <= N` (nfproto ipv6 first).
func payloadLenAtMost(n uint16) []expr.Any {
	return []expr.Any{&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseNetworkHeader, Offset: 4, Len: 2},
		&expr.Cmp{Op: expr.CmpOpLte, Register: reg1, Data: binaryutil.BigEndian.PutUint16(n)}}
}

// nfproto is `meta nfproto ipv4|ipv6`.
func nfproto(v6 bool) []expr.Any {
	p := byte(unix.NFPROTO_IPV4)
	if v6 {
		p = unix.NFPROTO_IPV6
	}
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: reg1}, cmpEq([]byte{p})}
}

// l4proto is `meta l4proto P`.
func l4proto(p byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg1}, cmpEq([]byte{p})}
}

// addrField loads the source or destination address of the family's header.
func addrField(v6, src bool, dreg uint32) *expr.Payload {
	off, n := uint32(16), uint32(4)
	switch {
	case v6 && src:
		off, n = 8, 16
	case v6:
		off, n = 24, 16
	case src:
		off = 12
	}
	return &expr.Payload{DestRegister: dreg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
}

func dportField(dreg uint32) *expr.Payload {
	return &expr.Payload{DestRegister: dreg, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}
}

func sportField() *expr.Payload {
	return &expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2}
}

// addrIn is `ip[6] saddr|daddr @set` (nfproto must be matched first).
func addrIn(v6, src bool, set *nftables.Set) []expr.Any {
	return []expr.Any{
		addrField(v6, src, reg1),
		&expr.Lookup{SourceRegister: reg1, SetName: set.Name, SetID: set.ID},
	}
}

// addrNotIn is `ip[6] saddr|daddr != @set` (nfproto must be matched first).
func addrNotIn(v6, src bool, set *nftables.Set) []expr.Any {
	return []expr.Any{
		addrField(v6, src, reg1),
		&expr.Lookup{SourceRegister: reg1, SetName: set.Name, SetID: set.ID, Invert: true},
	}
}

// daddrPortIn is `ip[6] daddr . th dport @set` (nfproto and l4proto first).
func daddrPortIn(v6 bool, set *nftables.Set) []expr.Any {
	second := uint32(regConcat4)
	if v6 {
		second = regConcat6
	}
	return []expr.Any{
		addrField(v6, false, reg1),
		dportField(second),
		&expr.Lookup{SourceRegister: reg1, SetName: set.Name, SetID: set.ID},
	}
}

// addrPrefix is `ip[6] saddr|daddr PREFIX`, including `meta nfproto`.
func addrPrefix(p netip.Prefix, src bool) []expr.Any {
	return append(nfproto(p.Addr().Is6()), addrMatch(p, src)...)
}

// addrMatch is addrPrefix without `meta nfproto`, for the netdev family
// (where `meta protocol` says the family).
func addrMatch(p netip.Prefix, src bool) []expr.Any {
	p = p.Masked()
	v6 := p.Addr().Is6()
	out := []expr.Any{addrField(v6, src, reg1)}
	bits, n := p.Bits(), p.Addr().BitLen()
	if bits < n {
		mask := netip.PrefixFrom(allOnes(v6), bits).Masked().Addr().AsSlice()
		zero := make([]byte, len(mask))
		out = append(out, &expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: uint32(len(mask)), Mask: mask, Xor: zero})
	}
	return append(out, cmpEq(p.Addr().AsSlice()))
}

func allOnes(v6 bool) netip.Addr {
	if v6 {
		return netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	}
	return netip.MustParseAddr("255.255.255.255")
}

// dport is `th dport P`; dportRange is `th dport FIRST-LAST`.
func dport(p uint16) []expr.Any {
	return []expr.Any{dportField(reg1), cmpEq(binaryutil.BigEndian.PutUint16(p))}
}

func dportRange(first, last uint16) []expr.Any {
	if first == last {
		return dport(first)
	}
	return []expr.Any{dportField(reg1), &expr.Range{
		Op: expr.CmpOpEq, Register: reg1,
		FromData: binaryutil.BigEndian.PutUint16(first), ToData: binaryutil.BigEndian.PutUint16(last),
	}}
}

func sport(p uint16) []expr.Any {
	return []expr.Any{sportField(), cmpEq(binaryutil.BigEndian.PutUint16(p))}
}

// ctEstablished is `ct state established,related`.
func ctEstablished() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: reg1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: reg1, DestRegister: reg1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg1, Data: binaryutil.NativeEndian.PutUint32(0)},
	}
}

// skuid is `meta skuid UID`.
func skuid(uid uint32) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeySKUID, Register: reg1}, cmpEq(binaryutil.NativeEndian.PutUint32(uid))}
}

// cgroupv2 is `socket cgroupv2 level LEVEL ID`.
func cgroupv2(level uint32, id uint64) []expr.Any {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint64(b, id)
	return []expr.Any{&expr.Socket{Key: expr.SocketKeyCgroupv2, Level: level, Register: reg1}, cmpEq(b)}
}

// etherType is `meta protocol P` (netdev family).
func etherType(p uint16) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: reg1}, cmpEq(binaryutil.BigEndian.PutUint16(p))}
}

// icmp6Type is `icmpv6 type FIRST-LAST` (l4proto ipv6-icmp first).
func icmp6Type(first, last byte) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: reg1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		&expr.Range{Op: expr.CmpOpEq, Register: reg1, FromData: []byte{first}, ToData: []byte{last}},
	}
}

func verdict(k expr.VerdictKind) *expr.Verdict { return &expr.Verdict{Kind: k} }

func jump(chain string) *expr.Verdict { return &expr.Verdict{Kind: expr.VerdictJump, Chain: chain} }

func counterRef(name string) *expr.Objref {
	return &expr.Objref{Type: int(nftables.ObjTypeCounter), Name: name}
}

// logLimited is `limit rate N/minute log prefix "PREFIX"`.
func logLimited(perMinute int, prefix string) []expr.Any {
	return []expr.Any{
		&expr.Limit{Type: expr.LimitTypePkts, Rate: uint64(perMinute), Unit: expr.LimitTimeMinute, Burst: 5},
		&expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(prefix)},
	}
}

// rejectTCP is `reject with tcp reset`; rejectAdmin is
// `reject with icmpx admin-prohibited`.
func rejectTCP() *expr.Reject { return &expr.Reject{Type: unix.NFT_REJECT_TCP_RST} }

func rejectAdmin() *expr.Reject {
	return &expr.Reject{Type: unix.NFT_REJECT_ICMPX_UNREACH, Code: unix.NFT_REJECT_ICMPX_ADMIN_PROHIBITED}
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
