package screen

import (
	"fmt"
)

// skipKeys are object keys whose string values CheckJSON leaves alone:
// identifiers, enumerations and binary data, where a token-shaped value
// is expected and screening would only raise false alarms (or decode an
// image as smuggled instructions).
var skipKeys = map[string]bool{
	"model": true, "id": true, "object": true, "role": true, "type": true,
	"finish_reason": true, "system_fingerprint": true, "tool_call_id": true,
	"done_reason": true, "created_at": true, "keep_alive": true, "format": true,
	"images": true, "image_url": true, "input_audio": true, "encoding_format": true,
}

// jsonChecker is the scratch state of one CheckJSON call.
type jsonChecker struct {
	w      jwalker
	fields []contentField
}

func (c *jsonChecker) visit(w *jwalker, start, end int) {
	if w.b[start] != '"' || end-start <= 2 {
		return
	}
	for i := 0; i < min(w.depth, len(w.path)); i++ {
		if k := w.path[i].key; k != nil && skipKeys[string(k)] {
			return
		}
	}
	c.fields = append(c.fields, contentField{start: start, end: end})
}

// CheckJSON screens every string value of the JSON document body (a
// request, or a whole non-streamed answer) except identifiers and binary
// data (see skipKeys). The strings are scanned as one text, each after a
// line break, so that a secret split across messages or content parts is
// found; a match is redacted in place in every string it touches. It
// returns body itself when nothing is redacted, else a rewritten copy in
// which the redacted strings are re-encoded; the findings (a match that
// spans strings counts once per string, with offsets into that string's
// decoded text); and a *BlockError when a block rule fired. A body that
// is not JSON is returned with an error wrapping ErrMalformedEvent.
func (s *Scanner) CheckJSON(body []byte) ([]byte, []Finding, error) {
	if !s.Enabled() {
		return body, nil, nil
	}
	c := &jsonChecker{}
	c.w.visit = c.visit
	if err := c.w.walk(body); err != nil {
		return body, nil, fmt.Errorf("screen: %w: %v", ErrMalformedEvent, err)
	}
	if len(c.fields) == 0 {
		return body, nil, nil
	}
	var joined []byte
	starts := make([]int, len(c.fields)+1) // starts[k]: where field k's text begins in joined
	for k, f := range c.fields {
		if k > 0 {
			joined = append(joined, '\n')
		}
		starts[k] = len(joined)
		joined = appendUnquote(joined, body[f.start:f.end])
	}
	starts[len(c.fields)] = len(joined) + 1
	parts := splitFindings(s.Scan(string(joined)), starts)
	all := make([]Finding, len(parts))
	for i, p := range parts {
		all[i] = p.Finding
	}
	for _, f := range all {
		if f.Action == ActionBlock {
			return body, all, &BlockError{Rule: f.Rule, Category: f.Category}
		}
	}
	return rewrite(body, c.fields, joined, starts, parts), all, nil
}

// fieldFinding is a finding within field k, with offsets into its text.
type fieldFinding struct {
	Finding
	k int
}

// splitFindings cuts the findings in the joined text at the boundaries of
// the fields and makes their offsets relative to their field.
func splitFindings(fs []Finding, starts []int) []fieldFinding {
	var out []fieldFinding
	for _, f := range fs {
		for k := 0; k+1 < len(starts); k++ {
			lo, hi := starts[k], starts[k+1]-1 // field k is joined[lo:hi]
			if f.End <= lo || f.Start >= hi {
				continue
			}
			g := fieldFinding{f, k}
			g.Start, g.End = max(f.Start, lo)-lo, min(f.End, hi)-lo
			out = append(out, g)
		}
	}
	return out
}

// rewrite re-encodes the fields with redactions, or returns body when
// there are none.
func rewrite(body []byte, fields []contentField, joined []byte, starts []int, fs []fieldFinding) []byte {
	var out []byte
	last := 0
	for k, f := range fields {
		var mine []Finding
		for _, x := range fs {
			if x.k == k {
				mine = append(mine, x.Finding)
			}
		}
		if !redacted(mine) {
			continue
		}
		text := string(joined[starts[k] : starts[k+1]-1])
		if out == nil {
			out = make([]byte, 0, len(body)+64)
		}
		out = append(out, body[last:f.start]...)
		out = appendQuote(out, []byte(Redact(text, mine)))
		last = f.end
	}
	if out == nil {
		return body
	}
	return append(out, body[last:]...)
}

func redacted(fs []Finding) bool {
	for _, f := range fs {
		if f.Action == ActionRedact {
			return true
		}
	}
	return false
}
