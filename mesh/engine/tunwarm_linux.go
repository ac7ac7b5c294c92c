package engine

import (
	"sync"

	"golang.zx2c4.com/wireguard/tun"
)

// warmWriter starts each run of TCP segments that wireguard-go's TUN GRO
// will coalesce in a warm buffer (warm.go). tun.Device.Write appends a
// run's payloads to its first packet's buffer, which is one of
// wireguard-go's 64 KiB packet buffers holding a packet at its head and
// cold memory behind it: the receiver spent a fifth of its time zeroing
// and filling that tail. Write hands the device a batch of its own, in
// which the first packet of each run is a copy in a warm buffer;
// wireguard-go's batch and buffers are left as they are.
type warmWriter struct {
	warm    *warmBufs
	batches sync.Pool // of *[][]byte
}

func newWarmWriter() *warmWriter {
	return &warmWriter{warm: newWarmBufs(warmKept), batches: sync.Pool{New: func() any { return new([][]byte) }}}
}

// write writes bufs to dev, the heads of its TCP runs in warm buffers.
func (w *warmWriter) write(dev tun.Device, bufs [][]byte, offset int) (int, error) {
	if len(bufs) < 2 {
		return dev.Write(bufs, offset)
	}
	p := w.batches.Get().(*[][]byte)
	batch := append((*p)[:0], bufs...)
	var room [8]*warmBuf
	taken := w.warmRuns(batch, offset, room[:0])
	n, err := dev.Write(batch, offset)
	for _, b := range taken {
		w.warm.put(b)
	}
	clear(batch)
	*p = batch
	w.batches.Put(p)
	return n, err
}

// warmRuns copies into a warm buffer the first packet of each run of TCP
// segments that GRO will likely coalesce, as many as fit in taken's
// capacity, and returns the buffers it took. A run, as tun's tcpGRO
// builds it for one flow in order: segments with data and no flag but ACK
// and PSH, none longer than the first, until one is shorter or has PSH
// set, or the first's buffer is full. It does not tell flows apart: with
// several in a batch a run may start in a cold buffer, as without it, or
// a warm copy go unused; GRO is the same either way.
func (w *warmWriter) warmRuns(bufs [][]byte, offset int, taken []*warmBuf) []*warmBuf {
	head, used, room, size, joined := -1, 0, 0, 0, 0
	for i := 0; i < len(bufs) && len(taken) < cap(taken); i++ {
		seg, ok := tcpSegment(bufs[i][offset:])
		if !ok || seg.payload == 0 {
			continue
		}
		if head >= 0 && seg.payload <= size && used+seg.payload <= room {
			if joined == 0 {
				taken = w.warmCopy(bufs, head, taken)
			}
			joined++
			used += seg.payload
		} else {
			head, used, size, joined = i, len(bufs[i])-offset, seg.payload, 0
			room = cap(bufs[i]) - 2*offset // tcpGRO's own bound
		}
		if seg.psh || seg.payload < size {
			head = -1
		}
	}
	return taken
}

func (w *warmWriter) warmCopy(bufs [][]byte, i int, taken []*warmBuf) []*warmBuf {
	if cap(bufs[i]) > warmLen {
		return taken
	}
	b := w.warm.get()
	bufs[i] = b[:copy(b[:], bufs[i]):cap(bufs[i])]
	return append(taken, b)
}

// tcpInfo is what warmRuns needs of a TCP segment.
type tcpInfo struct {
	payload int
	psh     bool // PSH set: the segment ends its run
}

// tcpSegment reads an unfragmented IPv4 or IPv6 TCP segment's payload
// length and PSH flag; false if it is none, or has flags beyond ACK and
// PSH, which GRO leaves alone.
func tcpSegment(p []byte) (tcpInfo, bool) {
	if len(p) < 40 {
		return tcpInfo{}, false
	}
	var iph int
	switch p[0] >> 4 {
	case 4:
		iph = int(p[0]&0x0f) * 4
		if p[9] != 6 || iph < 20 || p[6]&0x3f != 0 || p[7] != 0 {
			return tcpInfo{}, false
		}
	case 6:
		iph = 40
		if p[6] != 6 {
			return tcpInfo{}, false
		}
	default:
		return tcpInfo{}, false
	}
	if len(p) < iph+20 {
		return tcpInfo{}, false
	}
	tcph := int(p[iph+12]>>4) * 4
	if tcph < 20 || len(p) < iph+tcph {
		return tcpInfo{}, false
	}
	const ack, psh = 0x10, 0x08
	flags := p[iph+13]
	if flags&^psh != ack {
		return tcpInfo{}, false
	}
	return tcpInfo{payload: len(p) - iph - tcph, psh: flags&psh != 0}, true
}
