// Package upclient is an HTTP/1.1 client over plain connections that
// does its work in the calling goroutine: the guard's to its model
// servers (node/guard) and the employee router's to the nodes' guards
// over the mesh (mesh/router).
//
// It does what those callers need of http.Transport — connections kept
// alive per address, a bound on the wait for an answer's headers, the
// request's context cutting the exchange at any point, an optional bound
// on connections per address — without Transport's writer and reader
// goroutines: Transport hands every request to one and every answer over
// from the other, two goroutine hand-offs a request, which showed in both
// callers' profiles. Requests are written and answers parsed by net/http
// itself (Request.Write, ReadResponse).
//
// A kept connection the server has closed is noticed before reuse where
// Config.Alive can tell (a non-blocking peek on a socket; Transport's
// reader goroutine notices the same while the connection is idle), and a
// request that a reused connection failed before any byte of an answer
// came back is sent once more on a new connection: the server closed it
// idle and has not seen the request.
//
// The request context's httptrace.ClientTrace is told GetConn, GotConn,
// WroteHeaders, WroteRequest, Got1xxResponse and GotFirstResponseByte, as
// Transport tells it; the router's proof that a node got a request
// (mesh/router/conns.go) hangs on them.
package upclient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults for Config's zero values.
const (
	DefaultIdleTimeout = 90 * time.Second
	DefaultMaxIdle     = 256
)

// Config configures a Client. Only Dial is required.
type Config struct {
	// Dial connects to addr ("host:port") with network "tcp". It must
	// return when ctx ends. Required.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// HeaderTimeout bounds the wait for an answer's headers once the
	// request is written. Default 0: no bound but the request's context.
	HeaderTimeout time.Duration
	// IdleTimeout is how long an unused kept connection stays open.
	// Default DefaultIdleTimeout (90 s).
	IdleTimeout time.Duration
	// MaxIdle is how many unused connections are kept per address.
	// Default DefaultMaxIdle (256).
	MaxIdle int
	// MaxConns bounds the requests in flight, and so the connections, per
	// address: a request beyond it waits for one to end, or for its
	// context. Default 0: no bound.
	MaxConns int
	// Alive reports whether a kept connection is still open before it is
	// reused; it must not block. Default: a non-blocking peek on a
	// connection with a socket (syscall.Conn), true for any other (a
	// closed one is then caught by the resend on a new connection).
	Alive func(net.Conn) bool
}

// Client is an HTTP/1.1 client (an http.RoundTripper). Its methods are
// safe for concurrent use.
type Client struct {
	cfg Config
	mu  struct {
		sync.Mutex
		idle   map[string][]*conn       // by host:port, the most recently used last
		slots  map[string]chan struct{} // by host:port, with MaxConns
		sweep  *time.Timer              // armed while there are idle connections
		closed bool
	}
}

// conn is one connection to a server.
type conn struct {
	nc   net.Conn
	addr string
	br   *bufio.Reader
	bw   *bufio.Writer
	idle time.Time // when it was last put back
}

// ErrStale is wrapped by the error of a request that a reused
// connection failed before any byte of an answer: the server had closed
// it, or went away. RoundTrip sends such a request once more on a new
// connection when it can (Request.GetBody).
var ErrStale = errors.New("kept connection closed by the server")

// aLongTimeAgo is a deadline that makes blocked reads and writes return.
var aLongTimeAgo = time.Unix(1, 0)

// New returns a client with no connections.
func New(cfg Config) *Client {
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = DefaultMaxIdle
	}
	if cfg.Alive == nil {
		cfg.Alive = connAlive
	}
	return &Client{cfg: cfg}
}

// RoundTrip sends req (plain HTTP, a body of known length) and returns
// the answer, whose Body must be read to its end or closed. When it
// returns it has read req.Body, and any body req.GetBody gave it, for
// the last time: the caller may reuse their memory (the guard's pooled
// screening buffers rely on this; net/http's Transport does not promise
// it). The
// connection goes back to the pool when the body has been read to its
// end; closing it earlier closes the connection, which tells the server
// to stop.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return nil, fmt.Errorf("upstream %s: only http:// is supported", req.URL.Redacted())
	}
	if err := checkHeaders(req.Header); err != nil {
		return nil, err
	}
	ctx, addr := req.Context(), req.URL.Host
	slot, err := c.acquire(ctx, addr)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req, slot)
	if err != nil && slot != nil {
		<-slot
	}
	return resp, err
}

// send sends req on a kept connection or a new one, and once more on a
// new one if a kept one turns out stale.
func (c *Client) send(req *http.Request, slot chan struct{}) (*http.Response, error) {
	ctx, addr := req.Context(), req.URL.Host
	trace := httptrace.ContextClientTrace(ctx)
	getConn(trace, addr)
	pc, reused, err := c.get(ctx, addr)
	if err != nil {
		return nil, err
	}
	resp, err := c.exchange(pc, req, reused, trace, slot)
	if !errors.Is(err, ErrStale) || req.GetBody == nil || ctx.Err() != nil {
		return resp, err
	}
	again := *req // the same request, its body from the start, on a new connection
	if again.Body, err = req.GetBody(); err != nil {
		return nil, err
	}
	getConn(trace, addr)
	if pc, err = c.dialConn(ctx, addr); err != nil {
		return nil, err
	}
	return c.exchange(pc, &again, false, trace, slot)
}

// getConn tells trace that a connection is about to be taken or made.
func getConn(trace *httptrace.ClientTrace, addr string) {
	if trace != nil && trace.GetConn != nil {
		trace.GetConn(addr)
	}
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
func (c *Client) exchange(pc *conn, req *http.Request, reused bool, trace *httptrace.ClientTrace, slot chan struct{}) (*http.Response, error) {
	ctx := req.Context()
	if trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: pc.nc, Reused: reused})
	}
	if c.cfg.HeaderTimeout > 0 { // before the watch below, which must win
		pc.nc.SetReadDeadline(time.Now().Add(c.cfg.HeaderTimeout))
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
	err := req.Write(pc.bw) // tells trace WroteHeaders and WroteRequest
	if err == nil {
		err = pc.bw.Flush()
	}
	if err != nil {
		if reused {
			err = fmt.Errorf("%w: %w", ErrStale, err)
		}
		return fail(err)
	}
	resp, err := readResponse(pc.br, req, reused, trace)
	if err != nil {
		return fail(err)
	}
	if c.cfg.HeaderTimeout > 0 {
		pc.nc.SetReadDeadline(time.Time{})
		if ctx.Err() != nil { // cancelled while the deadline was being lifted
			return fail(ctx.Err())
		}
	}
	keep := !resp.Close && !req.Close && (resp.ContentLength >= 0 || len(resp.TransferEncoding) > 0)
	resp.Body = &body{ReadCloser: resp.Body, c: c, pc: pc, stop: stop, keep: keep, slot: slot}
	return resp, nil
}

// readResponse reads the answer's headers, skipping informational (1xx)
// answers. On a reused connection, an end or reset before the first byte
// is ErrStale.
func readResponse(br *bufio.Reader, req *http.Request, reused bool, trace *httptrace.ClientTrace) (*http.Response, error) {
	if _, err := br.Peek(1); err != nil {
		if reused && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) {
			err = fmt.Errorf("%w: %w", ErrStale, err)
		}
		return nil, err
	}
	if trace != nil && trace.GotFirstResponseByte != nil {
		trace.GotFirstResponseByte()
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
		if trace != nil && trace.Got1xxResponse != nil {
			if err := trace.Got1xxResponse(resp.StatusCode, textproto.MIMEHeader(resp.Header)); err != nil {
				return nil, err
			}
		}
	}
	return nil, errors.New("upstream sent too many informational answers")
}
