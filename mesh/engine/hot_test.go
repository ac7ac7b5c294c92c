package engine

import (
	"bytes"
	"testing"

	"golang.zx2c4.com/wireguard/conn"
)

// TestHotReceiveKeepsEveryPacket fills a whole batch, the hot slots
// included, and requires every packet in the caller's own buffers and
// the batch's buffers given back.
func TestHotReceiveKeepsEveryPacket(t *testing.T) {
	const batch = conn.IdealBatchSize
	var seen [][]byte // the buffers the wrapped receiver got
	fill := func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		seen = append(seen[:0], bufs...)
		for i := range bufs {
			sizes[i] = copy(bufs[i], bytes.Repeat([]byte{byte(i)}, 100+i))
		}
		return len(bufs), nil
	}
	recv := hotReceive(fill)
	bufs, sizes, eps := make([][]byte, batch), make([]int, batch), make([]conn.Endpoint, batch)
	own := make([][]byte, batch)
	for i := range bufs {
		bufs[i] = make([]byte, 1<<16-1)
		own[i] = bufs[i]
	}
	for round := range 2 { // the second with the hot buffers made
		n, err := recv(bufs, sizes, eps)
		if err != nil || n != batch {
			t.Fatalf("round %d: %d packets, %v", round, n, err)
		}
		if &seen[batch-1][0] == &own[batch-1][0] {
			t.Fatalf("round %d: the last slot was the caller's buffer, not a hot one", round)
		}
		for i := range bufs {
			if &bufs[i][0] != &own[i][0] {
				t.Fatalf("round %d: buffer %d not given back", round, i)
			}
			if want := bytes.Repeat([]byte{byte(i)}, 100+i); sizes[i] != len(want) || !bytes.Equal(bufs[i][:sizes[i]], want) {
				t.Fatalf("round %d: packet %d lost or wrong (%d bytes)", round, i, sizes[i])
			}
			clear(bufs[i][:sizes[i]])
		}
	}
}
