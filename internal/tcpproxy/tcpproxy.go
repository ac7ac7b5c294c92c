// Package tcpproxy forwards TCP connections for tests that need to break
// the path between two of moat's parts: Cut closes every connection and
// refuses new ones (a database gone); Freeze silences the connections
// open at that moment, both ways, without closing them (a host gone, a
// middlebox dropping the flow), and forwards later ones.
package tcpproxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards the connections made to Addr to its target until the
// test ends.
type Proxy struct {
	ln       net.Listener
	target   string
	accepted atomic.Int32
	cut      atomic.Bool
	mu       sync.Mutex
	conns    []net.Conn
	silent   []*atomic.Bool
}

// Start forwards connections to target until t ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.closeAll()
	})
	go p.serve()
	return p
}

// Addr is where the proxy listens, HOST:PORT.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Accepted is how many connections it has forwarded.
func (p *Proxy) Accepted() int { return int(p.accepted.Load()) }

// Cut closes every connection and refuses the ones that follow.
func (p *Proxy) Cut() {
	p.cut.Store(true)
	p.closeAll()
}

// Freeze makes the connections open now drop everything, both ways,
// while they stay open; later connections are forwarded.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.silent {
		s.Store(true)
	}
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.cut.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.accepted.Add(1)
		silent := new(atomic.Bool)
		p.mu.Lock()
		p.conns, p.silent = append(p.conns, c, up), append(p.silent, silent)
		p.mu.Unlock()
		go pump(up, c, silent)
		go pump(c, up, silent)
	}
}

// pump copies src to dst, dropping what it reads while silent, until
// either fails; then it closes dst.
func pump(dst io.WriteCloser, src io.Reader, silent *atomic.Bool) {
	defer dst.Close()
	b := make([]byte, 32<<10)
	for {
		n, err := src.Read(b)
		if n > 0 && !silent.Load() {
			if _, werr := dst.Write(b[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
