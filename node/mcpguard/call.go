package mcpguard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/screen"
)

// call decides a tools/call, screens its arguments and relays it.
func (x *exchange) call() {
	p, err := parseCallParams(x.msg.Params)
	x.rec = x.newRecord()
	if err != nil {
		x.refuseRPC(codeInvalidParams, "invalid", err.Error())
		return
	}
	x.rec.MCP.Tool = p.Name
	x.rec.MCP.ArgsHash = audit.HashPrompt(x.g.cfg.AuditKey, p.Arguments)
	g, named := x.who.decide(x.server, p.Name, x.start)
	switch {
	case !named:
		x.refuseRPC(codeRefused, "not_granted", fmt.Sprintf("tool %q of MCP server %q is not granted to %s; ask an admin", p.Name, x.server, x.who.who()))
		return
	case g == nil:
		x.refuseRPC(codeRefused, "mfa", fmt.Sprintf("tool %q of MCP server %q needs a more recent MFA; run \"moat login\"", p.Name, x.server))
		return
	}
	x.rec.Grant = g.rule.ID
	l := g.rule.Limits
	release, by := x.g.limits.acquire(x.who.limitKey+"|"+g.rule.ID, l.RPM, l.Concurrency, x.start)
	if by != "" {
		x.w.Header().Set("Retry-After", "60")
		x.refuseRPC(codeRefused, "limit_"+by, fmt.Sprintf("%s's %s limit under %s is reached; try again shortly", x.who.who(), limitName[by], g.rule.ID))
		return
	}
	defer release()
	args, ok := x.screenArgs(g, p.Arguments)
	if !ok {
		return
	}
	if g.rule.Audit.Prompts == "full" {
		x.rec.Prompt = args
	}
	x.msg.Params = p.encode(args)
	x.rec.Decision = audit.DecisionAllow
	x.forward(x.msg.encode(), func(msg []byte) []byte { return x.screenResult(g, msg) })
}

var limitName = map[string]string{"rpm": "calls-a-minute", "concurrency": "calls-in-flight"}

// screenArgs screens the arguments with the grant's answer-side rules:
// the arguments are what the model wrote.
func (x *exchange) screenArgs(g *grant, args json.RawMessage) (json.RawMessage, bool) {
	if g.screen == nil || args == nil {
		return args, true
	}
	out, fs, err := g.screen.Out.CheckJSON(args)
	x.addFindings(fs, "input")
	var be *screen.BlockError
	switch {
	case errors.As(err, &be):
		x.refuseRPC(codeRefused, "blocked", "the tool call's arguments were refused: "+be.Error())
		return nil, false
	case err != nil:
		x.refuseRPC(codeInvalidParams, "invalid", `"params.arguments" must be a JSON object`)
		return nil, false
	}
	return out, true
}

// screenResult screens a tools/call answer with the grant's prompt-side
// rules (the result becomes the model's input): redacted in place, or
// withheld when a block rule fires.
func (x *exchange) screenResult(g *grant, msg []byte) []byte {
	m, err := parseMessage(msg)
	if err != nil || !m.isResponse() {
		return x.unreadable(msg, err)
	}
	x.rec.MCP.ResultBytes += int64(len(m.Result))
	if m.Result == nil || g.screen == nil {
		return msg
	}
	out, fs, err := g.screen.In.CheckJSON(m.Result)
	x.addFindings(fs, "output")
	var be *screen.BlockError
	switch {
	case errors.As(err, &be):
		x.rec.Decision, x.rec.Reason = audit.DecisionDeny, "result_blocked"
		return errorResponse(m.ID, codeRefused, "result_blocked", "the tool's result was withheld: "+be.Error())
	case err != nil:
		return errorResponse(m.ID, codeRefused, "upstream", "the MCP server's result is not JSON")
	}
	m.Result = out
	return m.encode()
}

// addFindings records screening findings, never the matched text.
func (x *exchange) addFindings(fs []screen.Finding, where string) {
	at := map[string]int{} // rule and action → index in x.rec.Findings
	for _, f := range fs {
		k := f.Rule + "\x00" + f.Action.String()
		if i, ok := at[k]; ok {
			x.rec.Findings[i].Count++
			continue
		}
		at[k] = len(x.rec.Findings)
		x.rec.Findings = append(x.rec.Findings, audit.Finding{Rule: f.Rule, Category: f.Category.String(), Action: f.Action.String(), Where: where, Count: 1})
	}
}

// newRecord starts the audit record of this request.
func (x *exchange) newRecord() *audit.Record {
	rec := &audit.Record{Time: x.start, NodeID: x.g.cfg.NodeID, Node: x.g.cfg.NodeName, Source: x.r.RemoteAddr,
		API: "mcp", Status: http.StatusOK, MCP: &audit.MCPCall{Server: x.server}}
	if x.msg != nil {
		rec.MCP.Method = x.msg.Method
	}
	if c := x.who; c != nil {
		rec.UserID, rec.Login, rec.DeviceID, rec.DeviceName, rec.Tags = c.id.UserID, c.id.Login, string(c.id.DeviceID), c.id.DeviceName, c.id.Tags
	}
	return rec
}

// auditRefusal records a refusal.
func (x *exchange) auditRefusal(status int, reason string) {
	if x.rec == nil {
		x.rec = x.newRecord()
	}
	x.rec.Status, x.rec.Reason = status, reason
	switch {
	case reason == "mfa":
		x.rec.Decision = audit.DecisionDenyMFA
	case len(reason) > 6 && reason[:6] == "limit_":
		x.rec.Decision = audit.DecisionLimit
	case reason == "invalid" || reason == "too_large" || reason == "method" || reason == "unknown_method":
		x.rec.Decision = audit.DecisionInvalid
	default:
		x.rec.Decision = audit.DecisionDeny
	}
}

// finish writes the audit record, if the request has one.
func (x *exchange) finish() {
	if x.rec == nil || x.g.cfg.Audit == nil {
		return
	}
	x.rec.LatencyMS = x.g.cfg.Now().Sub(x.start).Milliseconds()
	if err := x.g.cfg.Audit.Append(x.rec); err != nil {
		x.g.cfg.Logger.Error("mcp audit record lost", "err", err)
	}
}
