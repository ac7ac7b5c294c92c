package guard

import (
	"context"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// Screen is the seam for input and output screening (node/screen
// implements the detectors; an adapter to this interface comes with it).
// The guard calls it for every allowed model request when Config.Screen is
// set; the grant's Guard settings say what to look for.
type Screen interface {
	// Input screens a request body before it goes upstream and returns the
	// body to send (the same slice, or a redacted copy). An error refuses
	// the request with 403 and the error's text as the reason.
	Input(ctx context.Context, c *ScreenCall, body []byte) ([]byte, error)
	// Output returns the filter for this request's answer, or nil to pass
	// the answer unchanged.
	Output(c *ScreenCall) OutputFilter
}

// OutputFilter screens one answer, payload by payload: each SSE event's
// data, each NDJSON line, or a whole non-streamed JSON answer. It is used
// by one goroutine.
type OutputFilter interface {
	// Payload appends to dst what to send for payload: the payload itself,
	// a rewritten (redacted) one, or nothing while it holds text back. An
	// error cuts the answer with a final error event naming it.
	Payload(dst, payload []byte) ([]byte, error)
	// Flush returns the payloads still held back, at the end of the answer.
	Flush() ([][]byte, error)
}

// ScreenCall describes the request being screened.
type ScreenCall struct {
	Identity *wire.Identity
	Model    string
	API      string // e.g. "openai.chat"
	Kind     string // KindOpenAI or KindOllama: the payloads' format
	Grant    *policy.GrantRule
}
