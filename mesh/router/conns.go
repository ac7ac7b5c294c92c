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

	"github.com/moatmesh/moat/internal/upclient"
)

// Connections to nodes are kept alive and reused: a new connection
// through the mesh costs a round trip and a netstack connection on both
// ends, several times what the request itself adds.
//
// A kept-alive connection has one danger: a node that went away
// (stopped, crashed, restarted with a fresh WireGuard session) gives no
// sign over WireGuard, so a request written to it would wait for an
// answer that never comes. The router therefore asks for proof that the
// node got the request: a packet from the node that arrived after the
// request was written (the engine stamps every peer's last packet,
// LastReceiver), or the answer's first byte. A live node's TCP
// acknowledges the request within a delayed-ACK time, so the proof costs
// no packet of its own, whatever the model later takes to answer. A
// request without it within Config.ConnectTimeout is given up on that
// connection; as the node either never had it or is gone, it is safe to
// send it again. When that happens on a reused connection, the node's
// idle connections are closed and the node is tried once more on a new
// connection after the other nodes. A request on a reused connection
// without proof after renewAfter also makes the engine renew the
// WireGuard session with the node (SessionRenewer), as its Dial does for
// a new connection: a node that restarted then answers the request's
// retransmission with a reset at once instead of at the deadline.
//
// A Dialer that cannot tell when a node last sent a packet gets the
// proof from HTTP instead: such requests carry "Expect: 100-continue"
// with their body (the client does not wait for the 100), and the
// guard's "100 Continue", sent when its handler reads the body, counts
// as proof; it costs a segment each way.

// LastReceiver is implemented by a Dialer that knows when a packet from
// a mesh address last arrived (*engine.Engine).
type LastReceiver interface {
	// LastReceive returns when a packet from the peer holding addr last
	// arrived (with a monotonic reading), or the zero time if never.
	LastReceive(addr netip.Addr) time.Time
}

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

// newNodeClient is the client for one node's guard. It writes a request
// and reads its answer in the calling goroutine (internal/upclient);
// with "Expect: 100-continue" (a Dialer without LastReceiver) the body
// goes at once and the 100 is only watched for. Kept mesh connections
// have no socket to peek at: one the node closed while idle is caught by
// upclient's resend on a new connection, or by the proof of receipt
// below.
func (r *Router) newNodeClient() *upclient.Client {
	return upclient.New(upclient.Config{
		Dial:        r.dial,
		MaxConns:    maxConnsPerNode,
		MaxIdle:     maxConnsPerNode,
		IdleTimeout: idleConnTimeout,
	})
}

// exchange is one request in flight to one node.
type exchange struct {
	resp   *http.Response
	reused bool      // sent on a kept-alive connection
	sent   time.Time // before the request's last bytes left
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
	x.disarm()
}

func (x *exchange) disarm() {
	if t := x.timer.Swap(nil); t != nil {
		t.Stop()
	}
}

// watch returns a context for one attempt whose trace arms a deadline
// once the request is written (arm) and disarms it at the answer's first
// byte or an interim 1xx, which may come before the request is fully
// written.
func (r *Router) watch(parent context.Context, x *exchange, addr netip.Addr) context.Context {
	ctx, cancel := context.WithCancelCause(parent)
	x.cancel = cancel
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		// A new connection for the client's resend (a kept one was found
		// closed): the deadline is the dial's own until it is written again.
		GetConn: func(string) { x.disarm() },
		GotConn: func(info httptrace.GotConnInfo) { x.reused = info.Reused },
		// The request is still in the connection's buffer here: its last
		// bytes leave, and are acknowledged, after this time.
		WroteHeaders: func() { x.sent = time.Now() },
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil { // else RoundTrip fails, or writes it again
				r.arm(x, addr)
			}
		},
		Got1xxResponse: func(int, textproto.MIMEHeader) error {
			x.alive()
			return nil
		},
		GotFirstResponseByte: x.alive,
	})
}

// arm checks, renewAfter (on a reused connection) and ConnectTimeout
// after the request was written, whether the node showed it has it, and
// renews the session or gives the attempt up (errNoAnswer) when not.
func (r *Router) arm(x *exchange, addr netip.Addr) {
	x.disarm() // a request the client wrote again (its resend on a new connection)
	if x.seen.Load() {
		return
	}
	lr, _ := r.cfg.Dialer.(LastReceiver)
	renew, _ := r.cfg.Dialer.(SessionRenewer)
	heard := func() bool {
		return x.seen.Load() || lr != nil && lr.LastReceive(addr).After(x.sent)
	}
	began := time.Now()
	var tick func()
	tick = func() {
		switch {
		case heard():
		case time.Since(began) >= r.cfg.ConnectTimeout:
			x.cancel(errNoAnswer)
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
}
