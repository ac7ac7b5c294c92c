package engine

import (
	"bytes"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// bigSegment builds one oversized TCP segment as the stack hands it over
// under host GSO: correct headers, payload of n bytes, PSH|FIN|ACK set.
func bigSegment(v6 bool, n int) ([]byte, stack.GSO) {
	src4, dst4 := tcpip.AddrFrom4([4]byte{100, 64, 0, 1}), tcpip.AddrFrom4([4]byte{100, 64, 0, 2})
	src6 := tcpip.AddrFrom16([16]byte{0xfd, 0x7a, 15: 1})
	dst6 := tcpip.AddrFrom16([16]byte{0xfd, 0x7a, 15: 2})
	l3 := header.IPv4MinimumSize
	if v6 {
		l3 = header.IPv6MinimumSize
	}
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	b := make([]byte, l3+header.TCPMinimumSize+n)
	copy(b[l3+header.TCPMinimumSize:], payload)
	if v6 {
		header.IPv6(b).Encode(&header.IPv6Fields{PayloadLength: uint16(len(b) - l3), TransportProtocol: header.TCPProtocolNumber, HopLimit: 64, SrcAddr: src6, DstAddr: dst6})
	} else {
		header.IPv4(b).Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), ID: 100, TTL: 64, Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src4, DstAddr: dst4})
	}
	header.TCP(b[l3:]).Encode(&header.TCPFields{SrcPort: 1000, DstPort: 80, SeqNum: 0xfffff000, AckNum: 5, DataOffset: header.TCPMinimumSize,
		Flags: header.TCPFlagAck | header.TCPFlagPsh | header.TCPFlagFin, WindowSize: 1000})
	g := stack.GSO{Type: stack.GSOTCPv4, MSS: 1000, L3HdrLen: uint16(l3), NeedsCsum: true}
	if v6 {
		g.Type = stack.GSOTCPv6
	}
	return b, g
}

func TestSplitTCP(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		in, g := bigSegment(v6, 4500)
		out := make([][]byte, 8)
		for i := range out {
			out[i] = make([]byte, 2000)
		}
		sizes := make([]int, 8)
		n, err := splitTCP(in, g, out, sizes, 16)
		if err != nil || n != 5 {
			t.Fatalf("v6=%v: %d segments, %v; want 5", v6, n, err)
		}
		var got []byte
		for i := 0; i < n; i++ {
			p := out[i][16 : 16+sizes[i]]
			l3 := int(g.L3HdrLen)
			var src, dst tcpip.Address
			if v6 {
				ip := header.IPv6(p)
				src, dst = ip.SourceAddress(), ip.DestinationAddress()
				if int(ip.PayloadLength()) != len(p)-l3 {
					t.Fatalf("segment %d: payload length %d, want %d", i, ip.PayloadLength(), len(p)-l3)
				}
			} else {
				ip := header.IPv4(p)
				src, dst = ip.SourceAddress(), ip.DestinationAddress()
				if !ip.IsChecksumValid() || int(ip.TotalLength()) != len(p) || ip.ID() != uint16(100+i) {
					t.Fatalf("segment %d: bad IPv4 header (csum ok %v, len %d/%d, id %d)", i, ip.IsChecksumValid(), ip.TotalLength(), len(p), ip.ID())
				}
			}
			tcp := header.TCP(p[l3:])
			body := tcp.Payload()
			if !tcp.IsChecksumValid(src, dst, checksum.Checksum(body, 0), uint16(len(body))) {
				t.Fatalf("segment %d: bad TCP checksum", i)
			}
			if want := uint32(0xfffff000) + uint32(i*1000); tcp.SequenceNumber() != want {
				t.Fatalf("segment %d: seq %#x, want %#x (wraps)", i, tcp.SequenceNumber(), want)
			}
			last := i == n-1
			if fin := tcp.Flags()&header.TCPFlagFin != 0; fin != last {
				t.Fatalf("segment %d: FIN=%v, want it on the last segment only", i, fin)
			}
			if psh := tcp.Flags()&header.TCPFlagPsh != 0; psh != last {
				t.Fatalf("segment %d: PSH=%v, want it on the last segment only", i, psh)
			}
			got = append(got, body...)
		}
		if !bytes.Equal(got, in[int(g.L3HdrLen)+header.TCPMinimumSize:]) {
			t.Fatalf("v6=%v: reassembled payload differs", v6)
		}
	}
}

func TestSplitTCPRefusals(t *testing.T) {
	in, g := bigSegment(false, 4500)
	out := [][]byte{make([]byte, 2000), make([]byte, 2000)}
	if _, err := splitTCP(in, g, out, make([]int, 2), 0); err != errNoRoom {
		t.Fatalf("5 segments into 2 buffers: %v, want errNoRoom", err)
	}
	if _, err := splitTCP(in[:30], g, out, make([]int, 2), 0); err == nil {
		t.Fatal("truncated packet accepted")
	}
	bad := bytes.Clone(in)
	bad[header.IPv4MinimumSize+12] = 0x20 // data offset 8 bytes: shorter than a TCP header
	if _, err := splitTCP(bad, g, out, make([]int, 2), 0); err == nil {
		t.Fatal("bad TCP data offset accepted")
	}
}

// A segment marked for GSO with no MSS yet (a bare ACK or FIN) goes out
// whole instead of dividing by zero.
func TestSplitTCPWithoutMSS(t *testing.T) {
	for _, size := range []int{0, 100} {
		in, g := bigSegment(false, size)
		g.MSS = 0
		sizes := make([]int, 2)
		n, err := splitTCP(in, g, [][]byte{make([]byte, 2000), make([]byte, 2000)}, sizes, 0)
		if err != nil || n != 1 || sizes[0] != len(in) {
			t.Fatalf("payload %d, MSS 0: %d packets (%v) of %v bytes, want 1 of %d", size, n, err, sizes[:max(n, 0)], len(in))
		}
	}
}
