package router

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/textproto"
	"sync/atomic"
	"time"
)

// Connections to nodes are kept alive and reused: a new connection
// through the mesh costs a round trip and a netstack connection on both
// ends, several times what the request itself adds.
//
// A kept-alive connection has one danger: a node that went away
// (stopped, crashed, restarted with a fresh WireGuard session) gives no
// sign over WireGuard, so a request written to it would wait for an
// answer that never comes. Every model request therefore carries
// "Expect: 100-continue" and its body at once (the transport does not
// wait for the 100), and the guard's HTTP server answers "100 Continue"
// as soon as its handler reads the body: a liveness check in the same
// round trip as the request, whatever the model later takes to answer.
// A request that gets neither the 100 nor an answer within
// Config.ConnectTimeout is given up on that connection; as the node
// either never had it or is gone, it is safe to send it again. When that
// happens on a reused connection, the node's idle connections are closed
// and the node is tried once more on a new connection after the other
// nodes. A request on a reused connection unacknowledged after
// renewAfter also makes the engine renew the WireGuard session with the
// node (SessionRenewer), as its Dial does for a new connection: a node
// that restarted then answers the request's retransmission with a
// reset at once instead of at the deadline.

// SessionRenewer is implemented by a Dialer that can renew the
// WireGuard session with the peer at an address (*engine.Engine).
type SessionRenewer interface {
	RenewSession(addr netip.Addr)
}

// renewAfter is how long a request on a reused connection may go
// unacknowledged before the session is renewed: a few round trips on
// any network a person works from.
const renewAfter = 500 * time.Millisecond

// errNoAnswer is an attempt's cause when the node did not acknowledge
// the request in time.
var errNoAnswer = errors.New("the node did not acknowledge the request")

// Connections per node: the guard allows a device 64 by default, so
// requests beyond that wait here for one rather than be refused there.
const (
	maxConnsPerNode = 64
	idleConnTimeout = 90 * time.Second // below the guard's 120 s, so the router closes first
)

// newNodeTransport is the transport for one node's guard.
func (r *Router) newNodeTransport() *http.Transport {
	return &http.Transport{
		DialContext:         r.dial,
		DisableCompression:  true, // pass Accept-Encoding and bodies through as they are
		MaxConnsPerHost:     maxConnsPerNode,
		MaxIdleConnsPerHost: maxConnsPerNode,
		IdleConnTimeout:     idleConnTimeout,
		ForceAttemptHTTP2:   false,
		// Zero: with "Expect: 100-continue" the body goes at once; the
		// 100 is only watched for (watch).
		ExpectContinueTimeout: 0,
	}
}

// exchange is one request in flight to one node.
type exchange struct {
	resp   *http.Response
	reused bool // sent on a kept-alive connection
	cancel context.CancelCauseFunc
	seen   atomic.Bool // the node showed it has the request
	timer  atomic.Pointer[time.Timer]
}

// done releases the exchange once its answer has been relayed.
func (x *exchange) done() {
	x.alive()
	if x.resp != nil {
		x.resp.Body.Close()
	}
	x.cancel(nil)
}

// alive disarms the deadline: the node has the request.
func (x *exchange) alive() {
	x.seen.Store(true)
	if t := x.timer.Swap(nil); t != nil {
		t.Stop()
	}
}

// watch returns a context for one attempt whose trace arms a deadline
// once the request is written and disarms it at the first sign of life
// from the node (an interim 1xx or the answer's first byte), which may
// come before the request is fully written.
func (r *Router) watch(parent context.Context, x *exchange, addr netip.Addr) context.Context {
	ctx, cancel := context.WithCancelCause(parent)
	x.cancel = cancel
	renew, _ := r.cfg.Dialer.(SessionRenewer)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { x.reused = info.Reused },
		WroteRequest: func(httptrace.WroteRequestInfo) {
			if x.seen.Load() {
				return
			}
			began := time.Now()
			var tick func()
			tick = func() {
				switch {
				case x.seen.Load():
				case time.Since(began) >= r.cfg.ConnectTimeout:
					cancel(errNoAnswer)
				default: // renewAfter passed on a reused connection
					renew.RenewSession(addr)
					x.timer.Store(time.AfterFunc(r.cfg.ConnectTimeout-time.Since(began), tick))
				}
			}
			first := r.cfg.ConnectTimeout
			if x.reused && renew != nil && renewAfter < first {
				first = renewAfter
			}
			x.timer.Store(time.AfterFunc(first, tick))
		},
		Got1xxResponse: func(int, textproto.MIMEHeader) error {
			x.alive()
			return nil
		},
		GotFirstResponseByte: x.alive,
	})
}
