package screen

import (
	"fmt"
	"slices"
	"sync"
	"unsafe"
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

// jsonChecker is the scratch state of one CheckJSON call. Scanners share
// them through a pool, so a call allocates only what it returns.
type jsonChecker struct {
	w      jwalker
	fields []contentField
	joined []byte         // the fields' texts, each after a line break
	starts []int          // starts[k]: where field k's text begins in joined
	found  []Finding      // findings in joined
	parts  []fieldFinding // found, cut at field boundaries
	mine   []Finding      // one field's findings
	red    []byte         // one field's redacted text
}

var checkers = sync.Pool{New: func() any {
	c := &jsonChecker{}
	c.w.visit = c.visit
	return c
}}

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
// is not JSON is returned with an error wrapping ErrMalformedEvent. It
// allocates only when something is found.
func (s *Scanner) CheckJSON(body []byte) ([]byte, []Finding, error) {
	return s.AppendCheckJSON(nil, nil, body)
}

// AppendCheckJSON is CheckJSON for a caller that keeps its buffers: it
// appends the findings to fs and, when something is redacted, the
// rewritten body to dst, and returns dst so extended; else it returns
// body itself (dst is then untouched). dst must not overlap body. It
// allocates only when dst or fs must grow.
func (s *Scanner) AppendCheckJSON(dst []byte, fs []Finding, body []byte) ([]byte, []Finding, error) {
	if !s.Enabled() {
		return body, fs, nil
	}
	c := checkers.Get().(*jsonChecker)
	defer c.release()
	if err := c.w.walk(body); err != nil {
		return body, fs, fmt.Errorf("screen: %w: %v", ErrMalformedEvent, err)
	}
	if len(c.fields) == 0 {
		return body, fs, nil
	}
	c.join(body)
	joined := unsafe.String(unsafe.SliceData(c.joined), len(c.joined)) // joined is not modified until release
	c.found = s.AppendScan(c.found, joined)
	if len(c.found) == 0 {
		return body, fs, nil
	}
	c.parts = splitFindings(c.parts, c.found, c.starts)
	n := len(fs)
	fs = slices.Grow(fs, len(c.parts))
	for _, p := range c.parts {
		fs = append(fs, p.Finding)
	}
	if err := blocked(fs[n:]); err != nil {
		return body, fs, err
	}
	return c.rewrite(dst, body), fs, nil
}

// join puts the fields' decoded texts in c.joined and their offsets in
// c.starts; starts has one more entry, one past the end.
func (c *jsonChecker) join(body []byte) {
	for k, f := range c.fields {
		if k > 0 {
			c.joined = append(c.joined, '\n')
		}
		c.starts = append(c.starts, len(c.joined))
		c.joined = appendUnquote(c.joined, body[f.start:f.end])
	}
	c.starts = append(c.starts, len(c.joined)+1)
}

// maxKeep is the largest text buffer a pooled jsonChecker keeps.
const maxKeep = 256 << 10

// release empties c (keeping its buffers, unless a large body grew them)
// and returns it to the pool.
func (c *jsonChecker) release() {
	c.w.b, c.w.path = nil, [len(c.w.path)]jseg{} // keep nothing of the body
	if cap(c.joined) > maxKeep || cap(c.red) > maxKeep {
		c.joined, c.red = nil, nil
	}
	c.fields, c.joined, c.starts = c.fields[:0], c.joined[:0], c.starts[:0]
	c.found, c.parts, c.mine, c.red = c.found[:0], c.parts[:0], c.mine[:0], c.red[:0]
	checkers.Put(c)
}

// fieldFinding is a finding within field k, with offsets into its text.
type fieldFinding struct {
	Finding
	k int
}

// splitFindings appends to out the findings in the joined text cut at the
// boundaries of the fields, their offsets relative to their field.
func splitFindings(out []fieldFinding, fs []Finding, starts []int) []fieldFinding {
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

// rewrite appends body to dst with the fields re-encoded with their
// redactions, or returns body when there are none.
func (c *jsonChecker) rewrite(dst, body []byte) []byte {
	out, used := dst, false
	last := 0
	for k, f := range c.fields {
		c.mine = c.mine[:0]
		for _, x := range c.parts {
			if x.k == k {
				c.mine = append(c.mine, x.Finding)
			}
		}
		if !redacted(c.mine) {
			continue
		}
		text := unsafe.String(unsafe.SliceData(c.joined[c.starts[k]:]), c.starts[k+1]-1-c.starts[k])
		c.red = appendRedact(c.red[:0], text, c.mine)
		if !used {
			out, used = slices.Grow(out, len(body)+64), true
		}
		out = append(out, body[last:f.start]...)
		out = appendQuote(out, c.red)
		last = f.end
	}
	if !used {
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
