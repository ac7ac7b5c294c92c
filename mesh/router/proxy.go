package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
)

// forward sends the request to the nodes serving rt, in the order
// candidates gives, until one answers. A node is given up on when it
// cannot be connected to, does not acknowledge the request in time
// (conns.go), fails before sending response headers, or answers
// 502/503/504 (its inference server is down): in all these cases the
// caller has received nothing yet and the body is replayed to the next
// node. A node whose kept-alive connection failed so is tried once more
// on a new connection, after the others. Once a response is relayed,
// nothing is retried.
func (r *Router) forward(w http.ResponseWriter, req *http.Request, s *snapshot, rt route, body []byte) {
	model := rt.model
	var tried []string
	var last *exchange
	defer func() {
		if last != nil {
			last.done()
		}
	}()
	cands := r.candidates(s, rt)
	fresh := map[*node]bool{}
	for i := 0; i < len(cands); i++ {
		n := cands[i]
		n.st.inflight.Add(1)
		x, err := r.attempt(req, n, body)
		if req.Context().Err() != nil {
			n.st.inflight.Add(-1)
			x.done()
			return // the caller went away; not the node's fault
		}
		if err == nil && !retryStatus(x.resp.StatusCode) {
			r.markUp(n)
			r.relay(w, x.resp)
			x.done()
			n.st.inflight.Add(-1)
			return
		}
		n.st.inflight.Add(-1)
		if err != nil && x.reused && !fresh[n] && !errors.As(err, new(*dialError)) {
			// Perhaps only this connection went stale (the node restarted):
			// drop its others and try it again on a new one, last. (A dial
			// error here is the client's own resend on a new connection
			// failing: that node was just tried fresh.)
			fresh[n] = true
			n.st.client.CloseIdleConnections()
			cands = append(cands, n)
		}
		r.markDown(n)
		tried = append(tried, describeFailure(n, x.resp, err))
		r.log.Warn("node failed", "node", n.name, "addr", n.addr.String(), "model", model, "err", tried[len(tried)-1])
		if x.resp == nil {
			x.done()
			continue
		}
		if last != nil {
			last.done()
		}
		last = x
	}
	if last != nil {
		r.relay(w, last.resp) // every node was down upstream: pass the guard's own answer on
		return
	}
	writeError(w, req, unavailable(fmt.Sprintf("no node serving %q could be reached (tried %s); check `moat status`",
		model, strings.Join(tried, "; ")), "no_node_reachable"))
}

func describeFailure(n *node, resp *http.Response, err error) string {
	if err != nil {
		return fmt.Sprintf("%s at %s: %v", n.name, n.addr, err)
	}
	return fmt.Sprintf("%s at %s: HTTP %d", n.name, n.addr, resp.StatusCode)
}

func retryStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// attempt sends one copy of the request to n's guard on a kept-alive
// connection, watched for the node's acknowledgement (conns.go). The
// exchange is returned in every case; the caller calls its done.
func (r *Router) attempt(req *http.Request, n *node, body []byte) (*exchange, error) {
	x := new(exchange)
	ctx := r.watch(req.Context(), x, n.addr.Addr())
	u := "http://" + n.addr.String() + req.URL.RequestURI()
	out, err := http.NewRequestWithContext(ctx, req.Method, u, bytes.NewReader(body))
	if err != nil {
		return x, err
	}
	out.Header = forwardHeaders(req.Header)
	out.ContentLength = int64(len(body))
	out.Header.Del("Expect") // the router answers the caller's itself
	if _, ok := r.cfg.Dialer.(LastReceiver); !ok && len(body) > 0 {
		out.Header.Set("Expect", "100-continue") // the proof of receipt (conns.go)
	}
	x.resp, err = n.st.client.RoundTrip(out)
	if err != nil && context.Cause(ctx) == errNoAnswer {
		err = fmt.Errorf("%w within %v", errNoAnswer, r.cfg.ConnectTimeout)
	}
	return x, err
}

// relay copies resp to w. An answer of unknown length (SSE, NDJSON) is
// flushed after every read so that streams reach the caller chunk by
// chunk; one of known length goes out as the server buffers it.
func (r *Router) relay(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	h := w.Header()
	for k, vs := range resp.Header {
		if !hopByHop(k, resp.Header) {
			h[k] = vs
		}
	}
	stream := resp.ContentLength < 0
	if !stream {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	if stream {
		rc.Flush()
	}
	bp := relayBufs.Get().(*[]byte)
	defer relayBufs.Put(bp)
	buf := *bp
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return // the caller went away
			}
			if stream {
				rc.Flush()
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			// Cut the answer off visibly rather than end it cleanly.
			r.log.Warn("node answer broke off", "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// relayBufs holds relay's copy buffers.
var relayBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// forwardHeaders copies the caller's headers minus hop-by-hop ones and
// everything that could claim an identity: who is asking is the device's
// WireGuard peer, never a header.
func forwardHeaders(in http.Header) http.Header {
	out := make(http.Header, len(in))
	for k, vs := range in {
		if hopByHop(k, in) || identityHeader(k) {
			continue
		}
		out[k] = vs
	}
	return out
}

func identityHeader(k string) bool {
	k = textproto.CanonicalMIMEHeaderKey(k)
	switch k {
	case "Authorization", "X-Api-Key", "Proxy-Authorization", "Cookie", "Forwarded", "X-Real-Ip", "Origin", "Referer":
		return true
	}
	return strings.HasPrefix(k, "X-Forwarded-") || strings.HasPrefix(k, "X-Moat-")
}

// hopByHop reports whether header k belongs to one connection only
// (RFC 9110 §7.6.1), including those h's Connection header names.
func hopByHop(k string, h http.Header) bool {
	k = textproto.CanonicalMIMEHeaderKey(k)
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length":
		return true
	}
	for _, v := range h.Values("Connection") {
		for f := range strings.SplitSeq(v, ",") {
			if textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(f)) == k {
				return true
			}
		}
	}
	return false
}
