package hatest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// rrProxy is a plain TCP load balancer: each new connection goes to the
// next backend in turn (one that refuses connections is skipped), with
// no stickiness. hold makes new connections wait.
type rrProxy struct {
	ln net.Listener
	wg sync.WaitGroup
	mu struct {
		sync.Mutex
		backends []string
		next     int
		served   []int // backend index of every connection, in order
		open     map[net.Conn]struct{}
		held     chan struct{} // closed on release; nil when not held
	}
}

func startProxy(t *testing.T) *rrProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &rrProxy{ln: ln}
	p.mu.open = map[net.Conn]struct{}{}
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *rrProxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *rrProxy) setBackends(addrs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.backends = addrs
}

// served returns the backend index of every connection so far.
func (p *rrProxy) served() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.mu.served...)
}

// upcoming is the backend the next connection tries first.
func (p *rrProxy) upcoming() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.next % len(p.mu.backends)
}

// hold makes new connections wait until release is called.
func (p *rrProxy) hold() (release func()) {
	ch := make(chan struct{})
	p.mu.Lock()
	p.mu.held = ch
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		p.mu.held = nil
		p.mu.Unlock()
		close(ch)
	}
}

func (p *rrProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c, true) {
			c.Close()
			return
		}
		p.wg.Go(func() { p.handle(c) })
	}
}

// track adds or removes an open connection; false once closed.
func (p *rrProxy) track(c net.Conn, add bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.open == nil {
		return false
	}
	if add {
		p.mu.open[c] = struct{}{}
	} else {
		delete(p.mu.open, c)
	}
	return true
}

func (p *rrProxy) handle(c net.Conn) {
	defer func() { c.Close(); p.track(c, false) }()
	p.mu.Lock()
	held := p.mu.held
	p.mu.Unlock()
	if held != nil {
		<-held
	}
	up := p.dial()
	if up == nil {
		return
	}
	defer func() { up.Close(); p.track(up, false) }()
	if !p.track(up, true) {
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(up, c)
	go cp(c, up)
	<-done
	<-done
}

// dial connects to the next backend that accepts, or returns nil.
func (p *rrProxy) dial() net.Conn {
	p.mu.Lock()
	n := len(p.mu.backends)
	p.mu.Unlock()
	for range n {
		p.mu.Lock()
		i := p.mu.next % len(p.mu.backends)
		p.mu.next++
		addr := p.mu.backends[i]
		p.mu.Unlock()
		up, err := net.Dial("tcp", addr)
		if err != nil {
			continue // a replica that is down: the next one
		}
		p.mu.Lock()
		p.mu.served = append(p.mu.served, i)
		p.mu.Unlock()
		return up
	}
	return nil
}

func (p *rrProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.mu.open {
		c.Close()
	}
	p.mu.open = nil
	p.mu.Unlock()
	p.wg.Wait()
}
