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
//
// Both directions keep the 64 KiB that a GSO send or a GRO receive fills
// in buffers of the bind's own (warm.go) that never leave it: a send
// copies the first datagram of each run into one, a receive reads into
// them and copies out the few datagrams that end there. wireguard-go's
// buffers stay where they are, holding what it expects.
type cappedBind struct {
	conn.Bind
	bufs sync.Pool // of *[][]byte, scratch batches
	warm *warmBufs
}

// warmKept is how many warm buffers the bind keeps between uses: enough
// for a few senders' runs and the receivers' GRO slots at once.
const warmKept = 16

func newCappedBind(b conn.Bind) *cappedBind {
	return &cappedBind{
		Bind: b,
		bufs: sync.Pool{New: func() any { return new([][]byte) }},
		warm: newWarmBufs(warmKept),
	}
}

// Open implements conn.Bind.
func (b *cappedBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	for i, fn := range fns {
		fn = b.warmReceive(fn)
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
	var room [8]*warmBuf
	taken := b.warmHeads(capped, room[:0])
	err := b.Bind.Send(capped, ep)
	for _, w := range taken {
		b.warm.put(w)
	}
	clear(capped) // the pool must not keep packets alive
	*p = capped
	b.bufs.Put(p)
	return err
}

// warmHeads replaces the first buffer of each run that StdNetBind will
// coalesce (gsoRun) with a copy in a warm buffer, as many as fit in
// taken's capacity, and returns the warm buffers it took.
func (b *cappedBind) warmHeads(bufs [][]byte, taken []*warmBuf) []*warmBuf {
	for i := 0; i < len(bufs) && len(taken) < cap(taken); {
		n := gsoRun(bufs[i:])
		if n > 1 && len(bufs[i]) <= maxGSOPayload {
			w := b.warm.get()
			bufs[i] = w[:copy(w[:], bufs[i]):maxGSOPayload]
			taken = append(taken, w)
		}
		i += n
	}
	return taken
}

// warmReceive wraps a receiver so that StdNetBind reads coalesced (GRO)
// datagrams into warm buffers rather than the caller's last groSlots
// buffers. The receiver gets a batch of its own, the caller's buffers
// with those slots replaced; datagrams that end in them are copied to the
// caller's buffer there. The caller's batch is never changed: wireguard-go
// reads each packet from its own arrays behind it.
func (b *cappedBind) warmReceive(fn conn.ReceiveFunc) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		if !groBatch(bufs) {
			return fn(bufs, sizes, eps)
		}
		first := len(bufs) - groSlots
		p := b.bufs.Get().(*[][]byte)
		batch := append((*p)[:0], bufs...)
		var warm [groSlots]*warmBuf
		for i := range warm {
			warm[i] = b.warm.get()
			batch[first+i] = warm[i][:len(bufs[first+i])]
		}
		n, err := fn(batch, sizes, eps)
		for i := first; i < n; i++ {
			copy(bufs[i], batch[i][:sizes[i]])
		}
		for _, w := range warm {
			b.warm.put(w)
		}
		clear(batch)
		*p = batch
		b.bufs.Put(p)
		return n, err
	}
}

// groBatch reports whether bufs is a batch StdNetBind reads GRO into the
// tail of, with tail buffers no longer than a warm one.
func groBatch(bufs [][]byte) bool {
	if len(bufs) != conn.IdealBatchSize {
		return false
	}
	for _, b := range bufs[len(bufs)-groSlots:] {
		if len(b) > warmLen {
			return false
		}
	}
	return true
}
