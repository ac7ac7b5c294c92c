package relay

import (
	"net"
	"sync"
)

// DERP's client flushes every packet it sends: one TLS record and one
// write system call each, which was the relay's largest cost (a fifth of
// the CPU in BenchmarkPath, relayed). WireGuard hands the bind packets in
// batches, so SendBatch corks the connection while it sends a batch: the
// frames gather in memory and go out in one write (TLS cuts it into
// records of up to 16 KiB).

// corkConn is a connection whose writes can be held back and sent
// together.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked int    // SendBatch calls in progress
	held   []byte // writes held while corked
}

// Write sends b, or holds it while the connection is corked.
func (c *corkConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corked > 0 {
		c.held = append(c.held, b...)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// cork holds writes back until the matching uncork.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked++
	c.mu.Unlock()
}

// uncork sends what was held once the last cork is lifted.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked--
	if c.corked > 0 || len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	if cap(c.held) > 1<<20 {
		c.held = nil // one huge batch does not pin its buffer
	} else {
		c.held = c.held[:0]
	}
	return err
}
