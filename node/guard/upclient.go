package guard

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"
)

// upClient is the guard's HTTP/1.1 client to its model servers, which
// listen on loopback over plain HTTP (checkUpstream). It does what the
// guard needs of http.Transport — connections kept alive per server, a
// dial timeout, a bound on the wait for the answer's headers, the
// request's context cutting the exchange at any point — in the calling
// goroutine. http.Transport hands every request to a writer goroutine and
// every answer over from a reader goroutine: two goroutine hand-offs a
// request, which showed in the guard's profile. Requests are written and
// answers parsed by net/http itself (Request.Write, ReadResponse).
//
// A kept connection the server has closed is noticed before reuse (a
// non-blocking peek; Transport's reader goroutine notices the same while
// the connection is idle), and a request that a reused connection failed
// before any byte of an answer came back is sent once more on a new
// connection: the server closed it idle and has not seen the request.
type upClient struct {
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	headerTimeout time.Duration // 0: none
	idleTimeout   time.Duration // idle connections are closed after this
	maxIdle       int           // idle connections kept per server
	mu            struct {
		sync.Mutex
		idle   map[string][]*upConn // by host:port, the most recently used last
		sweep  *time.Timer          // armed while there are idle connections
		closed bool
	}
}

// upConn is one connection to a model server.
type upConn struct {
	nc   net.Conn
	addr string
	br   *bufio.Reader
	bw   *bufio.Writer
	idle time.Time // when it was last put back
}

// errStale: a reused connection broke before the server answered.
var errStale = errors.New("kept connection closed by the model server")

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

func newUpClient(dialTimeout, headerTimeout time.Duration) *upClient {
	d := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return &upClient{dial: d.DialContext, headerTimeout: headerTimeout, idleTimeout: 90 * time.Second, maxIdle: 256}
}

// RoundTrip sends req (plain HTTP, a body of known length) and returns
// the answer, whose Body must be read to its end or closed. The
// connection goes back to the pool when the body has been read to its
// end; closing it earlier closes the connection, which tells the server
// to stop.
func (u *upClient) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return nil, fmt.Errorf("upstream %s: only http:// is supported", req.URL.Redacted())
	}
	if err := checkHeaders(req.Header); err != nil {
		return nil, err
	}
	pc, reused, err := u.get(req.Context(), req.URL.Host)
	if err != nil {
		return nil, err
	}
	resp, err := u.exchange(pc, req, reused)
	if !errors.Is(err, errStale) || req.GetBody == nil || req.Context().Err() != nil {
		return resp, err
	}
	again := *req // the same request, its body from the start, on a new connection
	if again.Body, err = req.GetBody(); err != nil {
		return nil, err
	}
	if pc, err = u.dialConn(req.Context(), req.URL.Host); err != nil {
		return nil, err
	}
	return u.exchange(pc, &again, false)
}

// checkHeaders refuses header values that would split the request.
func checkHeaders(h http.Header) error {
	for k, vs := range h {
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") || strings.ContainsAny(k, "\r\n\x00: ") {
				return fmt.Errorf("upstream request: invalid header %q", k)
			}
		}
	}
	return nil
}

// exchange writes req on pc and reads the answer's headers.
func (u *upClient) exchange(pc *upConn, req *http.Request, reused bool) (*http.Response, error) {
	ctx := req.Context()
	if u.headerTimeout > 0 { // before the watch below, which must win
		pc.nc.SetReadDeadline(time.Now().Add(u.headerTimeout))
	}
	stop := context.AfterFunc(ctx, func() { pc.nc.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		pc.nc.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("upstream request: %w", context.Cause(ctx))
		}
		return nil, err
	}
	err := req.Write(pc.bw)
	if err == nil {
		err = pc.bw.Flush()
	}
	if err != nil {
		if reused {
			err = fmt.Errorf("%w: %w", errStale, err)
		}
		return fail(err)
	}
	resp, err := readResponse(pc.br, req, reused)
	if err != nil {
		return fail(err)
	}
	if u.headerTimeout > 0 {
		pc.nc.SetReadDeadline(time.Time{})
		if ctx.Err() != nil { // cancelled while the deadline was being lifted
			return fail(ctx.Err())
		}
	}
	keep := !resp.Close && !req.Close && (resp.ContentLength >= 0 || len(resp.TransferEncoding) > 0)
	resp.Body = &upBody{ReadCloser: resp.Body, u: u, pc: pc, stop: stop, keep: keep}
	return resp, nil
}

// readResponse reads the answer's headers, skipping informational (1xx)
// answers. On a reused connection, an end or reset before the first byte
// is errStale.
func readResponse(br *bufio.Reader, req *http.Request, reused bool) (*http.Response, error) {
	if _, err := br.Peek(1); err != nil {
		if reused && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
			err = fmt.Errorf("%w: %w", errStale, err)
		}
		return nil, err
	}
	for range 5 {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode < 100 {
			return resp, nil
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return nil, errors.New("upstream switched protocols")
		}
	}
	return nil, errors.New("upstream sent too many informational answers")
}

// get returns a kept connection to addr that is still open, or a new one.
func (u *upClient) get(ctx context.Context, addr string) (pc *upConn, reused bool, err error) {
	for pc := u.takeIdle(addr); pc != nil; pc = u.takeIdle(addr) {
		if pc.br.Buffered() == 0 && connAlive(pc.nc) {
			return pc, true, nil
		}
		pc.nc.Close()
	}
	pc, err = u.dialConn(ctx, addr)
	return pc, false, err
}

func (u *upClient) dialConn(ctx context.Context, addr string) (*upConn, error) {
	nc, err := u.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &upConn{nc: nc, addr: addr, br: bufio.NewReader(nc), bw: bufio.NewWriter(nc)}, nil
}

// takeIdle removes the most recently used idle connection to addr.
func (u *upClient) takeIdle(addr string) *upConn {
	u.mu.Lock()
	defer u.mu.Unlock()
	l := u.mu.idle[addr]
	if len(l) == 0 {
		return nil
	}
	pc := l[len(l)-1]
	l[len(l)-1] = nil
	u.mu.idle[addr] = l[:len(l)-1]
	return pc
}

// put keeps pc for the next request, or closes it when the pool is full
// or closed, or when the server sent more than its answer.
func (u *upClient) put(pc *upConn) {
	if pc.br.Buffered() > 0 {
		pc.nc.Close()
		return
	}
	pc.idle = time.Now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.mu.closed || len(u.mu.idle[pc.addr]) >= u.maxIdle {
		pc.nc.Close()
		return
	}
	if u.mu.idle == nil {
		u.mu.idle = make(map[string][]*upConn)
	}
	u.mu.idle[pc.addr] = append(u.mu.idle[pc.addr], pc)
	if u.mu.sweep == nil {
		u.mu.sweep = time.AfterFunc(u.idleTimeout, u.sweepIdle)
	}
}

// sweepIdle closes the connections idle for longer than idleTimeout.
func (u *upClient) sweepIdle() {
	cut := time.Now().Add(-u.idleTimeout)
	var old []*upConn
	u.mu.Lock()
	left := 0
	for addr, l := range u.mu.idle {
		n := 0
		for n < len(l) && l[n].idle.Before(cut) {
			n++
		}
		old = append(old, l[:n]...)
		u.mu.idle[addr] = append(l[:0], l[n:]...)
		clear(l[len(l)-n:])
		left += len(l) - n
	}
	u.mu.sweep = nil
	if left > 0 && !u.mu.closed {
		u.mu.sweep = time.AfterFunc(u.idleTimeout/2, u.sweepIdle)
	}
	u.mu.Unlock()
	for _, pc := range old {
		pc.nc.Close()
	}
}

// close closes the idle connections; connections in use close when
// their answers end.
func (u *upClient) close() {
	u.mu.Lock()
	idle := u.mu.idle
	u.mu.idle, u.mu.closed = nil, true
	if u.mu.sweep != nil {
		u.mu.sweep.Stop()
	}
	u.mu.Unlock()
	for _, l := range idle {
		for _, pc := range l {
			pc.nc.Close()
		}
	}
}

// upBody is an answer's body. Read to its end, it puts the connection
// back; closed before, it closes the connection.
type upBody struct {
	io.ReadCloser
	u    *upClient
	pc   *upConn
	stop func() bool // stops the context's watch; false: it fired
	keep bool        // the connection may carry another request
	mu   sync.Mutex
	done bool
}

func (b *upBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.finish(true)
	}
	return n, err
}

func (b *upBody) Close() error {
	b.finish(false)
	return nil
}

// finish releases the connection once: back to the pool when the body
// was read to its end, the context did not cut it and the server keeps
// it open; else closed.
func (b *upBody) finish(atEOF bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	if b.stop() && atEOF && b.keep {
		b.u.put(b.pc)
		return
	}
	b.pc.nc.Close()
}
