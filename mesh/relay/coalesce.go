package relay

import (
	"net"
	"sync"
	"time"
)

// DERP's server writes each packet to a member on its own: its send loop
// buffers frames in a 2 KiB bufio.Writer, which one WireGuard packet
// fills, so every packet became one TLS record and one write system call
// (~45 % of the relay's CPU in BenchmarkPath, relayed). coalesceConn is
// the connection the server is handed instead: a Write only appends to a
// pending buffer, and one goroutine at a time writes out everything
// pending while the send loop goes on. Under load the frames queued
// while a write is in the kernel go out together (TLS cuts them into
// records of up to 16 KiB); an idle connection gets its frame written at
// once, with no delay added. The protocol and its bytes are unchanged.

// coalesceMax is how much a connection holds pending before Write waits
// for the writer: it bounds the memory of a member that does not read.
const coalesceMax = 64 << 10

var coalesceBufs = sync.Pool{New: func() any { b := make([]byte, 0, coalesceMax); return &b }}

// coalesceConn is a connection whose writes are queued and written in
// batches by a goroutine that runs only while something is pending.
type coalesceConn struct {
	net.Conn
	mu      sync.Mutex
	room    sync.Cond // the writer took the pending bytes, or failed
	pending *[]byte   // nil when nothing is pending
	writing bool      // a drain goroutine runs
	err     error     // the first write error (or close); later Writes return it
	// deadline is the write deadline last set (SetWriteDeadline), which
	// drain applies to the connection before each write; applied is the
	// one it last applied.
	deadline, applied time.Time
}

func newCoalesceConn(nc net.Conn) *coalesceConn {
	c := &coalesceConn{Conn: nc}
	c.room.L = &c.mu
	return c
}

// Write queues b. It waits only while coalesceMax bytes are pending; an
// error from an earlier write is returned here, as a slow or gone member
// is found by a write that fails or passes its deadline.
func (c *coalesceConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.err == nil && c.pending != nil && len(*c.pending)+len(b) > coalesceMax {
		c.room.Wait()
	}
	if c.err != nil {
		return 0, c.err
	}
	if c.pending == nil {
		c.pending = coalesceBufs.Get().(*[]byte)
	}
	*c.pending = append(*c.pending, b...)
	if !c.writing {
		c.writing = true
		go c.drain()
	}
	return len(b), nil
}

// SetWriteDeadline sets the deadline of the writes of what is pending now
// or later. DERP sets one before every frame it sends (its timeout for a
// member that does not read); applying each to the connection (a timer
// reset in the runtime) was 5 % of the relay's CPU profile, so drain
// applies the latest before each write it makes instead (relay CPU per
// Gbit 1–2 % lower in meshbench, within its noise). A write still fails once it
// has waited past the deadline set last before it began.
func (c *coalesceConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.deadline = t
	return nil
}

// SetDeadline sets the read deadline on the connection and the write
// deadline as SetWriteDeadline does.
func (c *coalesceConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// drain writes what is pending until nothing is, or a write fails.
func (c *coalesceConn) drain() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.pending != nil && c.err == nil {
		buf := c.pending
		c.pending = nil
		c.room.Broadcast()
		dl, apply := c.deadline, !c.deadline.Equal(c.applied)
		c.applied = dl
		c.mu.Unlock()
		var err error
		if apply {
			err = c.Conn.SetWriteDeadline(dl)
		}
		if err == nil {
			_, err = c.Conn.Write(*buf)
		}
		c.release(buf)
		c.mu.Lock()
		if err != nil && c.err == nil {
			c.err = err
			c.room.Broadcast()
		}
	}
	if c.pending != nil { // failed: what is left is dropped
		c.release(c.pending)
		c.pending = nil
	}
	c.writing = false
}

// release returns buf to the pool, unless one huge write grew it.
func (c *coalesceConn) release(buf *[]byte) {
	if cap(*buf) <= 2*coalesceMax {
		*buf = (*buf)[:0]
		coalesceBufs.Put(buf)
	}
}

// Close closes the connection; what is still pending is dropped (DERP
// writes nothing it needs delivered before it closes).
func (c *coalesceConn) Close() error {
	c.mu.Lock()
	if c.err == nil {
		c.err = net.ErrClosed
	}
	c.room.Broadcast()
	c.mu.Unlock()
	return c.Conn.Close()
}
