package upclient

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// acquire takes one of addr's MaxConns slots, waiting for one if need
// be; nil without MaxConns. The slot is given back by receiving from it.
func (c *Client) acquire(ctx context.Context, addr string) (chan struct{}, error) {
	if c.cfg.MaxConns <= 0 {
		return nil, nil
	}
	c.mu.Lock()
	slot := c.mu.slots[addr]
	if slot == nil {
		if c.mu.slots == nil {
			c.mu.slots = make(map[string]chan struct{})
		}
		slot = make(chan struct{}, c.cfg.MaxConns)
		c.mu.slots[addr] = slot
	}
	c.mu.Unlock()
	select {
	case slot <- struct{}{}:
		return slot, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("upstream request: waiting for a connection: %w", context.Cause(ctx))
	}
}

// get returns a kept connection to addr that is still open, or a new one.
func (c *Client) get(ctx context.Context, addr string) (pc *conn, reused bool, err error) {
	for pc := c.takeIdle(addr); pc != nil; pc = c.takeIdle(addr) {
		if pc.br.Buffered() == 0 && c.cfg.Alive(pc.nc) {
			return pc, true, nil
		}
		pc.nc.Close()
	}
	pc, err = c.dialConn(ctx, addr)
	return pc, false, err
}

func (c *Client) dialConn(ctx context.Context, addr string) (*conn, error) {
	nc, err := c.cfg.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &conn{nc: nc, addr: addr, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc)}, nil
}

// takeIdle removes the most recently used idle connection to addr.
func (c *Client) takeIdle(addr string) *conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.mu.idle[addr]
	if len(l) == 0 {
		return nil
	}
	pc := l[len(l)-1]
	l[len(l)-1] = nil
	c.mu.idle[addr] = l[:len(l)-1]
	return pc
}

// put keeps pc for the next request, or closes it when the pool is full
// or closed, or when the server sent more than its answer.
func (c *Client) put(pc *conn) {
	if pc.br.Buffered() > 0 {
		pc.nc.Close()
		return
	}
	pc.idle = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.closed || len(c.mu.idle[pc.addr]) >= c.cfg.MaxIdle {
		pc.nc.Close()
		return
	}
	if c.mu.idle == nil {
		c.mu.idle = make(map[string][]*conn)
	}
	c.mu.idle[pc.addr] = append(c.mu.idle[pc.addr], pc)
	if c.mu.sweep == nil {
		c.mu.sweep = time.AfterFunc(c.cfg.IdleTimeout, c.sweepIdle)
	}
}

// sweepIdle closes the connections idle for longer than IdleTimeout.
func (c *Client) sweepIdle() {
	cut := time.Now().Add(-c.cfg.IdleTimeout)
	var old []*conn
	c.mu.Lock()
	left := 0
	for addr, l := range c.mu.idle {
		n := 0
		for n < len(l) && l[n].idle.Before(cut) {
			n++
		}
		old = append(old, l[:n]...)
		c.mu.idle[addr] = append(l[:0], l[n:]...)
		clear(l[len(l)-n:])
		left += len(l) - n
	}
	c.mu.sweep = nil
	if left > 0 && !c.mu.closed {
		c.mu.sweep = time.AfterFunc(c.cfg.IdleTimeout/2, c.sweepIdle)
	}
	c.mu.Unlock()
	for _, pc := range old {
		pc.nc.Close()
	}
}

// CloseIdleConnections closes the connections not in use; the client
// stays usable.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	idle := c.mu.idle
	c.mu.idle = nil
	if c.mu.sweep != nil {
		c.mu.sweep.Stop()
		c.mu.sweep = nil
	}
	c.mu.Unlock()
	for _, l := range idle {
		for _, pc := range l {
			pc.nc.Close()
		}
	}
}

// Close closes the idle connections and keeps none from then on:
// connections in use close when their answers end, and requests after
// Close are still sent, each on a connection of its own.
func (c *Client) Close() {
	c.mu.Lock()
	c.mu.closed = true
	c.mu.Unlock()
	c.CloseIdleConnections()
}

// body is an answer's body. Read to its end, it puts the connection
// back; closed before, it closes the connection.
type body struct {
	io.ReadCloser
	c    *Client
	pc   *conn
	stop func() bool   // stops the context's watch; false: it fired
	keep bool          // the connection may carry another request
	slot chan struct{} // the MaxConns slot held, or nil
	mu   sync.Mutex
	done bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.finish(true)
	}
	return n, err
}

func (b *body) Close() error {
	b.finish(false)
	return nil
}

// finish releases the connection once: back to the pool when the body
// was read to its end, the context did not cut it and the server keeps
// it open; else closed.
func (b *body) finish(atEOF bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	if b.stop() && atEOF && b.keep {
		b.c.put(b.pc)
	} else {
		b.pc.nc.Close()
	}
	if b.slot != nil {
		<-b.slot
	}
}
