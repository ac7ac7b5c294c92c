package guard

import (
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/mesh/promptkey"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/policy"
)

// serveModel decides, limits and forwards one model request.
func (c *call) serveModel() {
	if !c.reserve() || !c.readBody() || !c.decide() || !c.observeAbuse() || !c.shape() || !c.admit() {
		return
	}
	body := c.req.rewrite(c.body, c.api, c.up.model, c.out)
	if s := c.g.cfg.Screen; s != nil {
		in := body
		var err error
		if body, err = s.Input(c.r.Context(), c.screenCall(), body); err != nil {
			c.refuseAs(http.StatusForbidden, reasonScreen, screenCode(err), fmt.Sprintf("the node's guard refused this request: %v", err), 0)
			return
		}
		if !sameSlice(in, body) {
			c.sent = body
		}
		setRedacted(c.w.Header(), c.sc)
	}
	c.forward(body)
}

// decide applies the policy: grant, MFA freshness, model served here.
func (c *call) decide() bool {
	g, v := c.snap.table.Decide(c.who.key, c.model, c.mfaAge(), c.who.id.MFAMethod)
	c.grant = g
	switch v {
	case policy.Deny:
		c.refuse(http.StatusForbidden, reasonNotGranted, fmt.Sprintf("model %q is not granted to %s; ask an admin", c.model, c.who.who()), 0)
		return false
	case policy.DenyMFA:
		if why := c.g.cfg.NoMFA; why != "" {
			c.refuse(http.StatusForbidden, reasonMFA, fmt.Sprintf("model %q is granted to %s only with a recent second factor, and %s; ask an admin for a grant without \"mfa\" here", c.model, c.who.who(), why), 0)
			return false
		}
		c.refuse(http.StatusUnauthorized, reasonMFA, c.mfaMessage(g), 0)
		return false
	}
	if c.up = c.g.served[c.model]; c.up == nil {
		c.refuse(http.StatusNotFound, reasonNotServed, fmt.Sprintf("model %q is not served on node %s; the node's configuration and the policy disagree, tell an admin", c.model, c.g.cfg.NodeName), 0)
		return false
	}
	if c.unavailable() {
		return false
	}
	if want := llmapi.Family(c.up.Kind); want != c.api.Family {
		c.refuse(http.StatusBadRequest, reasonWrongAPI, fmt.Sprintf("model %q on this node speaks the %s API and the guard does not translate; call %s instead of %s", c.model, want, c.api.Instead(want), c.api.Path), 0)
		return false
	}
	c.decision = audit.DecisionAllow
	return true
}

func (c *call) mfaMessage(g *policy.GrantRule) string {
	if c.who.id.LastMFA.IsZero() {
		return fmt.Sprintf("model %q needs a sign-in with a second factor and %s has none on this device; run \"moat login\"", c.model, c.who.who())
	}
	if !g.MFAFactor.Accepts(c.who.id.MFAMethod) {
		return fmt.Sprintf("model %q needs a sign-in with %s, and %s last signed in on this device with %s; run \"moat login\" and use a passkey (ask an admin if you have none)",
			c.model, g.MFAFactor.Describe(), c.who.who(), policy.MethodName(c.who.id.MFAMethod))
	}
	return fmt.Sprintf("model %q needs a second factor within the last %s and the last one of %s was %s ago; run \"moat login\"",
		c.model, time.Duration(g.MFA), c.who.who(), c.mfaAge().Round(time.Minute))
}

// shape decides how long and how many the request's answers may be
// (refusing fields the policy does not allow) and so its worst case.
func (c *call) shape() bool {
	out, err := c.req.shape(c.api, c.snap.ruleFor(c.grant, c.model))
	if err != nil {
		c.refuse(http.StatusBadRequest, reasonBadRequest, err.Error(), 0)
		return false
	}
	c.out = out
	return true
}

// admit reserves the request's worst case under the grant's limits.
func (c *call) admit() bool {
	want := c.out.reservation(c.api, len(c.body))
	t, r := c.g.limits.reserve(c.who.limitKey, c.grant, want, c.snap.ruleFor(c.grant, c.model).price, c.start, c.held)
	c.held = false
	if r != nil {
		c.refuseLimit(r)
		return false
	}
	c.ticket = t
	c.warnBudgets(c.w.Header())
	c.g.metrics.inflight.Inc()
	return true
}

// refuseLimit answers 429 for a limit that refuses the request.
func (c *call) refuseLimit(r *refusal) {
	c.refuse(http.StatusTooManyRequests, r.reason, limitMessage(c.who, r), r.retry)
}

// limitMessage says which limit refuses, what the request needed of it
// and when to retry.
func limitMessage(who *caller, r *refusal) string {
	if r.budget != nil {
		return budgetMessage(who, r)
	}
	if r.reason == reasonBudget { // a stream cut: the budget is not at hand
		return fmt.Sprintf("the budgets that count %s under %s allow no more of this answer; see \"moat status\"", who.who(), r.grant.ID)
	}
	what := limitName(r.grant.Limits, r.reason)
	if r.reason == reasonLeaseDown {
		what = limitName(r.grant.Limits, r.limit) + ", counted by the coordinator, which this node cannot reach (its leases and its allowance for the outage are used up)"
	}
	msg := fmt.Sprintf("%s may use %s under %s", who.who(), what, r.grant.ID)
	switch {
	case r.never:
		return fmt.Sprintf("%s; this request may use up to %d tokens (its prompt and every answer at its full length), more than that allows at all: ask for shorter answers (max_tokens) or fewer", msg, r.want)
	case r.want > 0:
		msg = fmt.Sprintf("%s; this request may use up to %d tokens (its prompt and every answer at its full length) and %d are left", msg, r.want, max(r.left, 0))
	}
	switch {
	case r.reason == reasonDay:
		msg += "; the count resets at 00:00 UTC"
	case !r.resets.IsZero():
		msg += "; the count resets at " + r.resets.UTC().Format("15:04:05 UTC")
	}
	return fmt.Sprintf("%s; retry in %s", msg, r.retry.Round(time.Second)+time.Second)
}

// limitName says limit (a refusal reason) of lim for people.
func limitName(lim policy.Limits, reason string) string {
	switch reason {
	case reasonRPM:
		return fmt.Sprintf("%d requests a minute", lim.RPM)
	case reasonTPM:
		return fmt.Sprintf("%d tokens a minute", lim.TPM)
	case reasonConcurrency:
		return fmt.Sprintf("%d requests at once", lim.Concurrency)
	case reasonDay:
		return fmt.Sprintf("%d tokens a day (UTC)", lim.TokensPerDay)
	}
	return reason
}

// screenCall returns the call's ScreenCall, made on first use.
func (c *call) screenCall() *ScreenCall {
	if c.sc == nil {
		c.scv = ScreenCall{Identity: &c.who.id, Model: c.model, API: c.api.Name, Kind: c.up.Kind, Grant: c.grant}
		c.sc = &c.scv // part of the call: screening allocates nothing of its own
	}
	return c.sc
}

// sameSlice reports whether a and b are the same bytes in memory.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// record is the call's audit record.
func (c *call) record() *audit.Record {
	rec := &audit.Record{
		Time: c.start.UTC(), NodeID: c.g.cfg.NodeID, Node: c.g.cfg.NodeName, Source: hostOf(c.r.RemoteAddr),
		Model: c.model, API: c.api.Name, Decision: c.decision, Reason: c.reason,
		TokensIn: c.tokensIn, TokensOut: c.tokensOut, Estimated: c.estimated,
		LatencyMS: c.elapsed.Milliseconds(), TTFTMS: c.ttft.Milliseconds(), Status: c.status,
	}
	if c.req != nil {
		rec.Stream = c.req.Stream
	}
	if t, ok := c.ticket.(*leaseTicket); ok && t.offline() {
		rec.Quota = "offline"
	}
	if w := c.who; w != nil {
		rec.UserID, rec.Login, rec.DeviceID, rec.DeviceName, rec.Tags = w.id.UserID, w.id.Login, string(w.id.DeviceID), w.id.DeviceName, w.id.Tags
	}
	if c.grant != nil {
		rec.Grant = c.grant.ID
		rec.Cost = c.snap.ruleFor(c.grant, c.model).price.Cost(c.tokensIn, c.tokensOut)
		rec.BudgetWarnings = c.budgetWarnings
		c.auditPrompt(rec)
	}
	if c.sc != nil {
		rec.Findings = slices.Clone(c.sc.findings) // not the call's array: a queued record must not keep the call (its body) alive
	}
	rec.Abuse = c.abuse
	return rec
}

// auditPrompt keeps the prompt as the grant's audit setting says.
func (c *call) auditPrompt(rec *audit.Record) {
	switch c.grant.Audit.Prompts {
	case "full":
		prompt := c.body
		if c.sent != nil {
			prompt = c.sent // redacted: the audit trail must not keep the secret either
		}
		c.sealPrompt(rec, prompt)
	case "hash":
		if len(c.g.cfg.AuditKey) == 0 {
			c.g.hashWarn.Do(func() {
				c.g.cfg.Logger.Warn("a grant asks for prompt hashes in audit records but the guard has no AuditKey; none are kept", "grant", c.grant.ID)
			})
			return
		}
		rec.PromptHash = c.g.prompts.hash(c.body)
	}
}

// sealPrompt keeps prompt in rec encrypted to the caller's prompt key.
// A caller without one (a tagged device, or a person whose key was
// erased) has no prompt kept: never in clear.
func (c *call) sealPrompt(rec *audit.Record, prompt []byte) {
	if c.who == nil || len(c.who.id.PromptKey) == 0 {
		return
	}
	sealed, err := promptkey.Seal(c.who.id.PromptKey, c.who.id.UserID, prompt)
	if err != nil {
		c.g.cfg.Logger.Warn("prompt not kept: it cannot be encrypted to the person's key", "user", c.who.id.UserID, "err", err)
		return
	}
	rec.PromptSealed = sealed
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
