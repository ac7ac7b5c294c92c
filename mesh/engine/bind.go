package engine

import (
	"sync"

	"golang.zx2c4.com/wireguard/conn"
)

// maxGSOPayload is the most UDP payload one GSO send may carry and still
// travel as one buffer. The kernel segments in software any GSO packet
// whose length, link header included, reaches the device's gso_max_size
// (64 KiB on loopback and most NICs), and a receiver then reads the
// datagrams one by one. 14 is an Ethernet header; 48 the IPv6 and UDP
// headers (IPv4's are smaller, so the cap holds for both).
const maxGSOPayload = 1<<16 - 1 - 14 - 48

// cappedBind wraps wireguard-go's StdNetBind so that no coalesced GSO send
// crosses the kernel's limit. StdNetBind appends a batch's datagrams into
// the first one's buffer while they fit its capacity and 65,507 bytes:
// with 1,424-byte datagrams (a netstack peer's full segments at MTU 1420)
// that is 46 of them, 65,504 bytes, which the kernel then splits. Send
// hands it buffers whose capacity ends at maxGSOPayload instead. Across
// loopback this took receive batches from 2.3 packets to 45 and the
// netstack pair from ~0.9 to ~2.8 Gbit/s.
//
// wireguard-go keeps its route listener, which forgets a peer's sticky
// source address when routes change, for an unwrapped StdNetBind only.
// So the wrapper drops the source address the receive path records, and
// the kernel picks one for every send, as for any UDP socket (tailscale
// does the same); a stale source can then never strand a peer.
type cappedBind struct {
	conn.Bind
	bufs sync.Pool // of *[][]byte, Send's scratch
}

func newCappedBind(b conn.Bind) *cappedBind {
	return &cappedBind{Bind: b, bufs: sync.Pool{New: func() any { return new([][]byte) }}}
}

// Open implements conn.Bind.
func (b *cappedBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	for i, fn := range fns {
		fns[i] = func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
			n, err := fn(bufs, sizes, eps)
			for _, ep := range eps[:n] {
				if ep != nil {
					ep.ClearSrc()
				}
			}
			return n, err
		}
	}
	return fns, actual, err
}

// Send implements conn.Bind.
func (b *cappedBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	p := b.bufs.Get().(*[][]byte)
	capped := (*p)[:0]
	for _, buf := range bufs {
		if cap(buf) > maxGSOPayload && len(buf) <= maxGSOPayload {
			buf = buf[:len(buf):maxGSOPayload]
		}
		capped = append(capped, buf)
	}
	err := b.Bind.Send(capped, ep)
	clear(capped) // the pool must not keep packets alive
	*p = capped
	b.bufs.Put(p)
	return err
}
