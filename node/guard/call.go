package guard

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/policy"
)

// call is one request on its way through the guard.
type call struct {
	g     *Guard
	w     http.ResponseWriter
	r     *http.Request
	api   *llmapi.API
	start time.Time
	snap  *snapshot
	who   *caller

	body     []byte    // as received
	bodyDone bool      // nothing of the body is left to read
	bodyDue  time.Time // when the body must be in (set when there is one)
	held     bool      // holds an admission slot (limiter.hold)
	req      *request  // parsed body
	model    string
	grant    *policy.GrantRule
	up       *upstream
	out      *output     // the answers the request may have
	ticket   reservation // its hold on the grant's limits, once admitted

	status              int
	decision, reason    string
	tokensIn, tokensOut int64
	estimated           bool
	ttft, elapsed       time.Duration
	audited             bool
	sc                  *ScreenCall // &scv once made (screenCall)
	scv                 ScreenCall
	sent                []byte   // the body forwarded, when screening changed it
	abuse               []string // abuse events this request raised
	budgetWarnings      []string // budgets past their soft threshold (headerBudget)
}

// ServeHTTP answers one request; see the package documentation.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.cfg.MCP != nil && strings.HasPrefix(r.URL.Path, llmapi.MCPPrefix) {
		g.cfg.MCP.ServeHTTP(w, r)
		return
	}
	api := route(r.URL.Path)
	if api == nil {
		closeUnread(w, r)
		g.metrics.refusals.WithLabelValues(reasonNotFound).Inc()
		writeError(w, llmapi.FamilyOfPath(r.URL.Path), http.StatusNotFound, reasonNotFound,
			fmt.Sprintf("this node has no API at %s; use %s", r.URL.Path, strings.Join(llmapi.Paths(), ", ")), 0)
		return
	}
	c := &call{g: g, w: w, r: r, api: api, start: g.cfg.Now(), snap: g.snap.Load(), audited: api.Kind == llmapi.KindModel}
	defer c.done()
	c.armBody()
	if r.Method != api.Method {
		w.Header().Set("Allow", api.Method)
		c.refuse(http.StatusMethodNotAllowed, reasonMethod, fmt.Sprintf("%s takes %s, not %s", r.URL.Path, api.Method, r.Method), 0)
		return
	}
	if !c.identify() {
		return
	}
	switch api.Kind {
	case llmapi.KindModel:
		c.serveModel()
	case llmapi.KindList:
		c.list()
	default:
		c.serveMetrics()
	}
}

// identify finds the caller from the connection's source address.
func (c *call) identify() bool {
	if c.snap == nil {
		c.refuse(http.StatusForbidden, reasonNoNetmap, "this node has not received its netmap from the coordinator yet, so it knows no callers; try again shortly", 0)
		return false
	}
	c.who = c.snap.lookup(c.r.RemoteAddr)
	switch {
	case c.who == nil:
		c.refuse(http.StatusForbidden, reasonUnknownCaller, fmt.Sprintf("this node does not know the device at mesh address %s (not signed in, revoked, or without access to this node); run \"moat login\", or ask an admin for access", hostOf(c.r.RemoteAddr)), 0)
		return false
	case c.who.id.Expired(c.start):
		c.refuse(http.StatusUnauthorized, reasonExpired, fmt.Sprintf("the sign-in of %s on device %s expired at %s; run \"moat login\"", c.who.who(), c.who.id.DeviceID, c.who.id.Expiry.UTC().Format(time.RFC3339)), 0)
		return false
	}
	return true
}

// refuse answers with an error in the API's shape and notes why.
func (c *call) refuse(status int, reason, msg string, retry time.Duration) {
	c.refuseAs(status, reason, reason, msg, retry)
}

// refuseAs is refuse with an error code other than the reason (see
// screenCode).
func (c *call) refuseAs(status int, reason, code, msg string, retry time.Duration) {
	if !c.bodyDone {
		closeUnread(c.w, c.r)
	}
	c.status, c.reason, c.decision = status, reason, decisionOf(reason)
	writeError(c.w, c.api.Family, status, code, msg, retry)
	http.NewResponseController(c.w).Flush()
}

func decisionOf(reason string) string {
	switch reason {
	case reasonMFA:
		return audit.DecisionDenyMFA
	case reasonRPM, reasonTPM, reasonConcurrency, reasonDay, reasonLeaseDown, reasonBudget, reasonAbuse:
		return audit.DecisionLimit
	case reasonUnavailable:
		return DecisionUnavailable
	case reasonUpstream, reasonUpstreamSlow: // allowed; the model server failed
		return audit.DecisionAllow
	case reasonBadRequest, reasonTooLarge, reasonBodyTimeout, reasonNotServed, reasonWrongAPI, reasonMethod:
		return audit.DecisionInvalid
	}
	return audit.DecisionDeny
}

// mfaAge is the time since the caller's last MFA; -1 if never. A last
// MFA slightly in this node's future (the coordinator's clock runs ahead)
// counts as just now, not as never.
func (c *call) mfaAge() time.Duration {
	if c.who.id.LastMFA.IsZero() {
		return -1
	}
	return max(c.start.Sub(c.who.id.LastMFA), 0)
}

// done settles the call: limits, metrics and the audit record. Last, it
// releases the screening buffers: after it, nothing reads the bodies
// they hold (the request as sent, the answer as written).
func (c *call) done() {
	if p := recover(); p != nil {
		// A bug. The record says what the caller got, an error and not
		// an answer; net/http then closes the connection.
		c.status, c.reason = http.StatusInternalServerError, reasonInternal
		c.g.cfg.Logger.Error("guard: a request's handler panicked; the connection is closed", "model", c.model, "panic", p, "stack", string(debug.Stack()))
		defer panic(http.ErrAbortHandler)
	}
	if c.sc != nil {
		defer func() { c.sc.release(); c.sent = nil }()
	}
	c.elapsed = c.g.cfg.Now().Sub(c.start)
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.held {
		c.g.limits.unhold(c.who.limitKey)
	}
	if c.ticket != nil {
		c.ticket.settle(c.tokensIn, c.tokensOut)
		c.g.metrics.inflight.Dec()
	}
	if c.api.Kind != llmapi.KindModel {
		if c.reason != "" {
			c.g.metrics.refusals.WithLabelValues(c.reason).Inc()
		}
		return
	}
	c.g.metrics.observe(c)
	if c.audited && c.g.audit != nil {
		if err := c.g.audit.Append(c.record()); err != nil {
			c.g.cfg.Logger.Error("audit record lost", "err", err)
		}
	}
}
