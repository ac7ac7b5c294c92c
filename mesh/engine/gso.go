package engine

import (
	"errors"
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// errNoRoom means a packet's segments do not fit in the buffers left.
var errNoRoom = errors.New("not enough buffers for the segments")

// segments returns how many packets pkt becomes on the wire.
func segments(pkt *stack.PacketBuffer, whole int) int {
	g := pkt.GSOOptions
	if g.Type != stack.GSOTCPv4 && g.Type != stack.GSOTCPv6 || g.MSS == 0 {
		return 1
	}
	hdr := int(g.L3HdrLen) + tcpHeaderLen(pkt)
	payload := whole - hdr
	if payload <= 0 {
		return 1
	}
	return (payload + int(g.MSS) - 1) / int(g.MSS)
}

func tcpHeaderLen(pkt *stack.PacketBuffer) int {
	if b := pkt.TransportHeader().Slice(); len(b) >= header.TCPMinimumSize {
		return int(header.TCP(b).DataOffset())
	}
	return header.TCPMinimumSize
}

// splitTCP cuts the contiguous TCP/IP packet in (an oversized segment the
// stack produced under host GSO) into MSS-sized packets written at offset
// into out, and returns how many it wrote. Each packet gets its own IP
// length (and IPv4 id and header checksum), TCP sequence number, flags and
// a full TCP checksum, exactly as a NIC's TSO would produce them.
func splitTCP(in []byte, g stack.GSO, out [][]byte, sizes []int, offset int) (int, error) {
	l3 := int(g.L3HdrLen)
	if len(in) < l3+header.TCPMinimumSize {
		return 0, fmt.Errorf("gso: packet of %d bytes too short", len(in))
	}
	tcpLen := int(header.TCP(in[l3:]).DataOffset())
	hdrLen := l3 + tcpLen
	if tcpLen < header.TCPMinimumSize || len(in) < hdrLen {
		return 0, fmt.Errorf("gso: bad TCP header length %d", tcpLen)
	}
	mss := int(g.MSS)
	payload := in[hdrLen:]
	if mss <= 0 {
		// Marked for GSO before the connection had an MSS (a SYN, an ACK
		// or a FIN): there is nothing to cut, and no MSS to divide by.
		mss = max(len(payload), 1)
	}
	n := max(1, (len(payload)+mss-1)/mss)
	if n > len(out) {
		return 0, errNoRoom
	}
	is4 := g.Type == stack.GSOTCPv4
	var src, dst tcpip.Address
	var id uint16
	if is4 {
		ip := header.IPv4(in)
		src, dst, id = ip.SourceAddress(), ip.DestinationAddress(), ip.ID()
	} else {
		ip := header.IPv6(in)
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	}
	seq := header.TCP(in[l3:]).SequenceNumber()
	flags := header.TCP(in[l3:]).Flags()
	for i := 0; i < n; i++ {
		chunk := payload[min(i*mss, len(payload)):min((i+1)*mss, len(payload))]
		b := out[i][offset : offset+hdrLen+len(chunk)]
		copy(b, in[:hdrLen])
		copy(b[hdrLen:], chunk)
		if is4 {
			ip := header.IPv4(b)
			ip.SetTotalLength(uint16(len(b)))
			ip.SetID(id + uint16(i))
			ip.SetChecksum(0)
			ip.SetChecksum(^ip.CalculateChecksum())
		} else {
			header.IPv6(b).SetPayloadLength(uint16(len(b) - l3))
		}
		t := header.TCP(b[l3:])
		t.SetSequenceNumber(seq + uint32(i*mss))
		f := flags
		if i > 0 {
			f &^= header.TCPFlagCwr
		}
		if i < n-1 {
			f &^= header.TCPFlagFin | header.TCPFlagPsh
		}
		t.SetFlags(uint8(f))
		t.SetChecksum(0)
		sum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(t)))
		t.SetChecksum(^checksum.Checksum(t, sum))
		sizes[i] = len(b)
	}
	return n, nil
}
