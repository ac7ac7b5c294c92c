package guard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"
)

// forwardedHeaders are the only caller headers that go upstream. Anything
// that could claim an identity (Authorization, X-Forwarded-For, Forwarded,
// X-Real-IP, X-Moat-*, cookies) is thereby dropped.
var forwardedHeaders = []string{"Accept", "Accept-Language", "User-Agent", "Openai-Beta"}

// forward sends body upstream and relays the answer.
func (c *call) forward(body []byte) {
	req, err := http.NewRequestWithContext(c.r.Context(), http.MethodPost, c.up.base+c.api.Path, bytes.NewReader(body))
	if err != nil {
		c.refuse(http.StatusBadGateway, reasonUpstream, "the guard could not build the upstream request: "+err.Error(), 0)
		return
	}
	c.upstreamHeaders(req.Header)
	resp, err := c.g.upstream.RoundTrip(req)
	if err != nil {
		c.upstreamError(err)
		return
	}
	defer resp.Body.Close()
	// Relayed by what the answer is, not by what the request asked: a
	// stream read as a whole answer would count no tokens.
	if resp.StatusCode == http.StatusOK && isStream(resp.Header) {
		c.req.Stream = true // as the audit record should say
		c.relayStream(resp)
		return
	}
	c.relayWhole(resp)
}

func (c *call) upstreamHeaders(h http.Header) {
	for _, k := range forwardedHeaders {
		if v := c.r.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	h.Set("Content-Type", "application/json")
	for k, v := range c.up.Header {
		h[http.CanonicalHeaderKey(k)] = v
	}
}

func isStream(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "text/event-stream" || mt == "application/x-ndjson"
}

// upstreamError answers a failed upstream request: 504 when it timed
// out, 502 when it could not be reached; nothing when the caller left.
func (c *call) upstreamError(err error) {
	if c.r.Context().Err() != nil {
		c.status, c.reason = 499, "client_gone"
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && !isDialError(err) {
		c.refuse(http.StatusGatewayTimeout, reasonUpstreamSlow, fmt.Sprintf("the model server for %q on node %s did not answer within %s; try again later, or tell the node's operator if it persists", c.model, c.g.cfg.NodeName, c.g.cfg.UpstreamHeaderTimeout), 0)
		return
	}
	c.g.cfg.Logger.Warn("upstream unreachable", "model", c.model, "err", err)
	c.refuse(http.StatusBadGateway, reasonUpstream, fmt.Sprintf("the model server for %q on node %s is not reachable; tell the node's operator", c.model, c.g.cfg.NodeName), 0)
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// relayWhole passes a non-streamed answer on and reads its usage.
func (c *call) relayWhole(resp *http.Response) {
	b, err := readAllSized(io.LimitReader(resp.Body, c.g.cfg.MaxResponseBytes+1), resp.ContentLength, c.g.cfg.MaxResponseBytes)
	switch {
	case err != nil:
		c.upstreamError(err)
		return
	case int64(len(b)) > c.g.cfg.MaxResponseBytes:
		c.refuse(http.StatusBadGateway, reasonUpstream, fmt.Sprintf("the answer of the model server for %q is larger than this node's limit of %d bytes", c.model, c.g.cfg.MaxResponseBytes), 0)
		return
	}
	if resp.StatusCode/100 == 2 {
		if b, err = c.screenWhole(b); err != nil {
			c.refuseAs(http.StatusForbidden, reasonScreen, screenCode(err), fmt.Sprintf("the node's guard withheld the answer: %v", err), 0)
			return
		}
		setRedacted(c.w.Header(), c.sc)
		c.count(readTally(c.api.Family, b), true)
	}
	h := c.w.Header()
	h.Set("Content-Type", resp.Header.Get("Content-Type"))
	h.Set("Content-Length", strconv.Itoa(len(b)))
	c.status = resp.StatusCode
	c.w.WriteHeader(resp.StatusCode)
	c.w.Write(b)
	http.NewResponseController(c.w).Flush() // the caller has the answer before metrics and audit
}

func (c *call) screenWhole(b []byte) ([]byte, error) {
	if s := c.g.cfg.Screen; s != nil {
		return s.Answer(c.screenCall(), b)
	}
	return b, nil
}

// count settles the token counts from what the upstream reported, or from
// estimates when final and it reported nothing. APIs that use no tokens
// (model information) count none.
func (c *call) count(t tally, final bool) {
	if c.api.NoTokens {
		return
	}
	if t.reported {
		c.tokensIn, c.tokensOut, c.estimated = t.in, t.out, false
		return
	}
	if final && c.tokensIn == 0 && c.tokensOut == 0 {
		c.tokensIn, c.tokensOut, c.estimated = estimate(len(c.body)), estimate(t.textBytes), true
	}
}

// since is the time from the request's start.
func (c *call) since() time.Duration { return c.g.cfg.Now().Sub(c.start) }
