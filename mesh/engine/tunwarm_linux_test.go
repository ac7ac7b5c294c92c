package engine

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golang.zx2c4.com/wireguard/tun"
)

// segment builds an IPv4 TCP segment of payload bytes at offset in a
// 64 KiB buffer, as wireguard-go hands them to the TUN device.
func segment(offset, payload int, seq uint32, flags byte) []byte {
	b := make([]byte, offset+40+payload, 1<<16-1)
	p := b[offset:]
	p[0], p[9] = 0x45, 6
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	binary.BigEndian.PutUint32(p[24:], seq)
	p[32], p[33] = 5<<4, flags
	for i := range payload {
		p[40+i] = byte(seq) + byte(i)
	}
	return b
}

// recordingTUN is a tun.Device whose Write keeps what it was given.
type recordingTUN struct {
	tun.Device
	got [][]byte
}

func (r *recordingTUN) Write(bufs [][]byte, offset int) (int, error) {
	r.got = append(r.got[:0], bufs...)
	return len(bufs), nil
}

// TestWarmWriterStartsRunsWarm writes one flow's batch and requires the
// device to get the same packets, with the first of each run GRO builds
// (a full buffer's worth, or up to a PSH) in a warm buffer and no other,
// and the caller's batch left as it was.
func TestWarmWriterStartsRunsWarm(t *testing.T) {
	const offset, payload, ack, psh = 16, 1380, 0x10, 0x18
	var bufs [][]byte
	for i := range 110 {
		flags := byte(ack)
		if i == 99 {
			flags = psh
		}
		bufs = append(bufs, segment(offset, payload, uint32(i*payload), flags))
	}
	bufs = append(bufs, segment(offset, 0, 0, ack)) // a bare ACK: no part of a run
	own := append([][]byte(nil), bufs...)
	// A run fills (65,535 - 2×16 - 1,420) / 1,380 = 46 segments behind its
	// first; the PSH on 99 ends the third, so 100 starts a fourth.
	warm := map[int]bool{0: true, 47: true, 94: true, 100: true}

	dev := &recordingTUN{}
	w := newWarmWriter()
	for round := range 2 {
		if _, err := w.write(dev, bufs, offset); err != nil {
			t.Fatal(err)
		}
		for i, b := range dev.got {
			if isOwn := &b[0] == &own[i][0]; isOwn == warm[i] {
				t.Fatalf("round %d: packet %d in a warm buffer: %v, want %v", round, i, !isOwn, warm[i])
			}
			if !bytes.Equal(b, own[i]) || cap(b) != cap(own[i]) {
				t.Fatalf("round %d: packet %d not as given", round, i)
			}
			if &bufs[i][0] != &own[i][0] {
				t.Fatalf("round %d: the caller's batch changed at %d", round, i)
			}
		}
	}
}
