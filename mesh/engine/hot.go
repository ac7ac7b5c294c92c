package engine

import "golang.zx2c4.com/wireguard/conn"

// hotSlots is how many of a receive batch's last buffers StdNetBind reads
// coalesced (GRO) datagrams into before it splits them into the buffers
// in front: conn.IdealBatchSize over the 64 datagrams the kernel
// coalesces at most.
const hotSlots = conn.IdealBatchSize / 64

// hotReceive wraps a receiver so that the batch's last hotSlots buffers,
// which take the coalesced datagrams, are the receiver's own warm ones.
// Any packet that ends in one of them (a batch of more packets than the
// buffers in front) is copied to the caller's buffer there: wireguard-go
// reads packets from its own arrays behind bufs. One goroutine calls each
// receiver, so its buffers need no lock.
func hotReceive(fn conn.ReceiveFunc) conn.ReceiveFunc {
	var hot [hotSlots][]byte
	var swapped [][]byte
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		if len(bufs) <= hotSlots {
			return fn(bufs, sizes, eps)
		}
		first := len(bufs) - hotSlots
		swapped = append(swapped[:0], bufs[first:]...)
		for i := range hot {
			if len(hot[i]) != len(swapped[i]) {
				hot[i] = make([]byte, len(swapped[i]))
			}
			bufs[first+i] = hot[i]
		}
		n, err := fn(bufs, sizes, eps)
		for i, own := range swapped {
			if first+i < n {
				copy(own, bufs[first+i][:sizes[first+i]])
			}
			bufs[first+i] = own
		}
		clear(swapped)
		return n, err
	}
}
