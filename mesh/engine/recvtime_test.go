package engine

import (
	"net/netip"
	"testing"
	"time"
)

// A packet from a peer stamps every address of that peer, and only
// after the packet arrived; addresses of no peer, or of a peer that sent
// nothing, have no time.
func TestLastReceive(t *testing.T) {
	a, b, c := newMember(t, 1), newMember(t, 2), newMember(t, 3)
	a.apply(t, 1, b, c)
	b.apply(t, 1, a)
	b.serveHTTP(t, "b")
	for _, addr := range append(b.addrs, c.addrs[0], netip.MustParseAddr("100.64.0.9")) {
		if got := a.eng.LastReceive(addr); !got.IsZero() {
			t.Fatalf("LastReceive(%s) before any traffic = %v, want zero", addr, got)
		}
	}
	before := time.Now()
	if _, err := get(a.client(10*time.Second), b.addrs[1]); err != nil { // over IPv6
		t.Fatal(err)
	}
	after := time.Now()
	for _, addr := range append(b.addrs, netip.AddrFrom16(b.addrs[0].As16())) { // IPv4-mapped too
		if got := a.eng.LastReceive(addr); got.Before(before) || got.After(after) {
			t.Fatalf("LastReceive(%s) = %v, want between %v and %v", addr, got, before, after)
		}
	}
	if got := a.eng.LastReceive(c.addrs[0]); !got.IsZero() {
		t.Fatalf("LastReceive of a silent peer = %v, want zero", got)
	}
	// A peer that stays in the netmap keeps its time; one removed loses it.
	a.apply(t, 2, b)
	if a.eng.LastReceive(b.addrs[0]).IsZero() {
		t.Fatal("a netmap change lost the time of a peer that stayed")
	}
	a.apply(t, 3, c)
	if got := a.eng.LastReceive(b.addrs[0]); !got.IsZero() {
		t.Fatalf("LastReceive of a removed peer = %v, want zero", got)
	}
}

func TestSourceAddr(t *testing.T) {
	v4 := make([]byte, 20)
	v4[0] = 0x45
	copy(v4[12:], []byte{100, 64, 0, 7})
	v6 := make([]byte, 40)
	v6[0] = 0x60
	want6 := netip.MustParseAddr("fd7a:6d6f:6174::7")
	b16 := want6.As16()
	copy(v6[8:], b16[:])
	for _, tc := range []struct {
		pkt  []byte
		want netip.Addr
		ok   bool
	}{
		{v4, netip.MustParseAddr("100.64.0.7"), true},
		{v6, want6, true},
		{v4[:19], netip.Addr{}, false},
		{v6[:39], netip.Addr{}, false},
		{nil, netip.Addr{}, false},
		{[]byte{0x50, 0, 0}, netip.Addr{}, false},
	} {
		got, ok := sourceAddr(tc.pkt)
		if got != tc.want || ok != tc.ok {
			t.Errorf("sourceAddr(% x) = %v, %v; want %v, %v", tc.pkt, got, ok, tc.want, tc.ok)
		}
	}
}

// Stamping a batch allocates nothing.
func TestStampAllocatesNothing(t *testing.T) {
	rt := newRecvTimes()
	addrs := map[netip.Addr]*recvStamp{netip.MustParseAddr("100.64.0.7"): new(recvStamp)}
	rt.addrs.Store(&addrs)
	pkt := make([]byte, 60)
	pkt[0] = 0x45
	copy(pkt[12:], []byte{100, 64, 0, 7})
	bufs := [][]byte{pkt, pkt, pkt}
	if n := testing.AllocsPerRun(100, func() { rt.stamp(bufs, 0) }); n != 0 {
		t.Fatalf("stamp allocated %v times a batch", n)
	}
	if rt.last(netip.MustParseAddr("100.64.0.7")).IsZero() {
		t.Fatal("stamp recorded nothing")
	}
}
