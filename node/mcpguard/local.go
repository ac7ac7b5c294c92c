package mcpguard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// localHost is the host of the URL a Config.Local server is reached at:
// never resolved, as the guard's transport for it dials in memory.
const localHost = ".local.mcp.invalid"

// local serves Config.Local's handlers over in-memory connections: no
// socket another process could reach.
type local struct {
	lns  map[string]*pipeListener // host → listener
	srvs []*http.Server
	rt   *http.Transport
}

func newLocal(handlers map[string]http.Handler, servers map[string]*url.URL) (*local, error) {
	l := &local{lns: map[string]*pipeListener{}}
	for name, h := range handlers {
		if servers[name] != nil {
			return nil, errors.New("mcp server " + name + " is both a URL and a local server")
		}
		host := name + localHost
		ln := newPipeListener()
		l.lns[host] = ln
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		l.srvs = append(l.srvs, srv)
		go srv.Serve(ln)
		servers[name] = &url.URL{Scheme: "http", Host: host, Path: "/mcp"}
	}
	l.rt = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second,
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			host, _, _ := net.SplitHostPort(addr)
			if ln := l.lns[host]; ln != nil {
				return ln.dial(ctx)
			}
			return nil, errors.New("no local MCP server at " + addr)
		}}
	return l, nil
}

// transport returns the round tripper for server u: the in-memory one
// for a local server, else def.
func (l *local) transport(u *url.URL, def http.RoundTripper) http.RoundTripper {
	if l != nil && l.lns[u.Hostname()] != nil {
		return l.rt
	}
	return def
}

func (l *local) close() {
	if l == nil {
		return
	}
	for _, s := range l.srvs {
		s.Close()
	}
	l.rt.CloseIdleConnections()
}

// pipeListener hands the server ends of net.Pipe connections to an
// http.Server.
type pipeListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) dial(ctx context.Context) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "local" }
