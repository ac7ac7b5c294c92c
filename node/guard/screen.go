package guard

import (
	"context"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/policy"
)

// Screen is the seam for input and output screening. The guard calls it
// for every allowed model request; the grant's Guard settings say what to
// look for. Config.Screen overrides the built-in one (policyScreen, driven
// by node/screen).
type Screen interface {
	// Input screens a request body before it goes upstream and returns the
	// body to send (the same slice, or a redacted copy). An error refuses
	// the request with 403 and the error's text as the message; it must
	// name the rule and never echo the matched text.
	Input(ctx context.Context, c *ScreenCall, body []byte) ([]byte, error)
	// Output returns the filter for this request's streamed answer, or nil
	// to pass the stream unchanged.
	Output(c *ScreenCall) OutputFilter
	// Answer screens a whole non-streamed JSON answer and returns what to
	// send (the same slice, or a redacted copy). An error withholds the
	// answer with 403.
	Answer(c *ScreenCall, body []byte) ([]byte, error)
}

// OutputFilter screens one streamed answer, payload by payload: each SSE
// event's data or each NDJSON line. It is used by one goroutine.
type OutputFilter interface {
	// Payload appends to dst what to send for payload, each payload framed
	// by frame: the payload itself, a rewritten (redacted) one, nothing
	// while it holds text back, or held-back text followed by the payload.
	// An error cuts the answer with a final error event naming it.
	Payload(dst, payload []byte, frame func(dst, p []byte) []byte) ([]byte, error)
	// End appends the payloads still held back, framed, when the answer
	// ends (before OpenAI's "data: [DONE]", or at the end of the body).
	End(dst []byte, frame func(dst, p []byte) []byte) ([]byte, error)
}

// ScreenCall describes the request being screened. Screens note what
// fired with Note; the guard puts it in the audit record.
type ScreenCall struct {
	Identity *wire.Identity
	Model    string
	API      string // e.g. "openai.chat"
	Kind     string // KindOpenAI or KindOllama: the payloads' format
	Grant    *policy.GrantRule

	findings []audit.Finding
	found    [8]audit.Finding // findings' first backing: the usual few rules need no allocation
	held     [2]*screenBuf    // the redacted bodies, until the call is done (release)
}

// Note records that a rule fired: rule id, category, action and where
// ("input" or "output"). Repeats of the same rule, action and direction
// are counted, not listed again. Never pass matched text.
func (c *ScreenCall) Note(rule, category, action, where string) {
	for i := range c.findings {
		f := &c.findings[i]
		if f.Rule == rule && f.Action == action && f.Where == where {
			f.Count++
			return
		}
	}
	if c.findings == nil {
		c.findings = c.found[:0]
	}
	c.findings = append(c.findings, audit.Finding{Rule: rule, Category: category, Action: action, Where: where, Count: 1})
}

// Findings returns what was noted so far.
func (c *ScreenCall) Findings() []audit.Finding { return c.findings }

// netmapScreen is the optional ability of a Screen to prepare for a new
// netmap's grants (compile them once) before the guard enforces it. An
// error refuses the netmap.
type netmapScreen interface {
	prepare(rules *policy.NodeRules) error
}
