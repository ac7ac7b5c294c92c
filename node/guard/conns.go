package guard

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/moatmesh/moat/mesh/llmapi"
)

// reasonTooManyConns refuses a connection over Config.MaxConnsPerPeer.
const reasonTooManyConns = "too_many_connections"

// maxRefusing bounds the refused connections told why at once; beyond
// it (a flood of connections) they are closed without an answer.
const maxRefusing = 256

// connRefuseTimeout bounds the time spent telling a refused connection
// why (writing the 429 and letting the peer read it before the close).
const connRefuseTimeout = time.Second

// peerConns counts the open connections of each peer across Serve's
// listeners. A connection counts from Accept until it is closed.
type peerConns struct {
	max int
	// refusing bounds the refused connections being answered at once.
	refusing chan struct{}
	mu       struct {
		sync.Mutex
		open map[string]int // peer → connections open
	}
}

func newPeerConns(max int) *peerConns {
	p := &peerConns{max: max, refusing: make(chan struct{}, maxRefusing)}
	p.mu.open = make(map[string]int)
	return p
}

func (p *peerConns) take(peer string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.open[peer] >= p.max {
		return false
	}
	p.mu.open[peer]++
	return true
}

func (p *peerConns) release(peer string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.open[peer]--; p.mu.open[peer] <= 0 {
		delete(p.mu.open, peer)
	}
}

// count is how many connections peer holds open.
func (p *peerConns) count(peer string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.open[peer]
}

// peerListener is Serve's listener: it refuses a peer's connections over
// Config.MaxConnsPerPeer.
type peerListener struct {
	net.Listener
	g *Guard
}

// Accept returns the next connection of a peer under its bound; the
// others are answered 429 and closed on the side.
func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := l.g.peerOf(c.RemoteAddr().String())
		if l.g.conns.take(peer) {
			return &peerConn{Conn: c, release: func() { l.g.conns.release(peer) }}, nil
		}
		l.g.metrics.refusals.WithLabelValues(reasonTooManyConns).Inc()
		select {
		case l.g.conns.refusing <- struct{}{}:
			go func() {
				defer func() { <-l.g.conns.refusing }()
				l.refuse(c)
			}()
		default: // a flood: no time to explain
			c.Close()
		}
	}
}

// peerOf names the peer behind a remote address: its key when the
// current netmap knows the address, else the address itself.
func (g *Guard) peerOf(remote string) string {
	if c := g.snap.Load().lookup(remote); c != nil {
		return c.key
	}
	return hostOf(remote)
}

// refuse answers a connection over the bound with 429 and closes it. It
// reads a little of the request first, within connRefuseTimeout, so the
// close does not reset the connection before the peer has the answer.
func (l *peerListener) refuse(c net.Conn) {
	max := l.g.conns.max
	defer c.Close()
	c.SetDeadline(time.Now().Add(connRefuseTimeout))
	msg := fmt.Sprintf("this device already has %d connections open to node %s, the most it may; retry when one of its requests ends", max, l.g.cfg.NodeName)
	body := append(llmapi.ErrorBody(llmapi.OpenAI, http.StatusTooManyRequests, reasonTooManyConns, msg), '\n')
	head := "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n"
	if _, err := io.WriteString(c, head+string(body)); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		io.Copy(io.Discard, io.LimitReader(c, 64<<10)) // until the peer closes, the deadline or 64 KiB
	}
}

// peerConn is a counted connection; Close gives its place back, once.
type peerConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *peerConn) Close() error {
	c.once.Do(c.release)
	return c.Conn.Close()
}

// CloseWrite lets net/http half-close before closing, as it does on its
// own connections, so a final answer is not lost to a reset.
func (c *peerConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
