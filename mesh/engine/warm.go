package engine

import "golang.zx2c4.com/wireguard/conn"

// warmLen is the length of a warm buffer: the largest UDP datagram, so
// that one holds whatever a GRO receive coalesces.
const warmLen = 1<<16 - 1

// groSlots is how many of a full receive batch's last buffers StdNetBind
// reads coalesced (GRO) datagrams into before it splits them into the
// buffers in front: conn.IdealBatchSize over the 64 datagrams the kernel
// coalesces at most.
const groSlots = conn.IdealBatchSize / 64

// maxDatagrams is how many datagrams the kernel takes in one GSO send.
const maxDatagrams = 64

type warmBuf = [warmLen]byte

// warmBufs is a free list of the bind's own 64 KiB buffers, in which it
// coalesces GSO sends and takes GRO receives. wireguard-go would do both
// in the tail of one of its thousands of packet buffers, most of which
// only ever hold a packet at their head: 64 KiB of cold memory per batch,
// often never touched before, so the copy paid page faults and cache
// misses. A buffer here stays faulted in and in cache, being used again
// and again; and unlike a sync.Pool's, the collector never empties the
// list, which would make the buffers cold again.
type warmBufs struct{ free chan *warmBuf }

func newWarmBufs(n int) *warmBufs { return &warmBufs{free: make(chan *warmBuf, n)} }

// get returns a free buffer, or a new one if none is free.
func (w *warmBufs) get() *warmBuf {
	select {
	case b := <-w.free:
		return b
	default:
		return new(warmBuf)
	}
}

// put gives back a buffer from get; past the list's size it is dropped.
func (w *warmBufs) put(b *warmBuf) {
	select {
	case w.free <- b:
	default:
	}
}

// gsoRun returns how many of bufs, from the first, StdNetBind coalesces
// into one GSO send when the first buffer's capacity ends at
// maxGSOPayload: datagrams no longer than the first, the last of them
// possibly shorter, at most maxDatagrams, within maxGSOPayload in all.
// It mirrors conn.coalesceMessages; were they to differ, a run would only
// start in a cold buffer or a warm one be filled for nothing.
func gsoRun(bufs [][]byte) int {
	if len(bufs) == 0 {
		return 0
	}
	size, total := len(bufs[0]), len(bufs[0])
	n := 1
	for ; n < len(bufs) && n < maxDatagrams; n++ {
		l := len(bufs[n])
		if l > size || total+l > maxGSOPayload {
			break
		}
		total += l
		if l < size {
			return n + 1
		}
	}
	return n
}
