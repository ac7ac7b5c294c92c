package screen

import (
	"fmt"
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
// data (see skipKeys), each string as one text. It returns body itself
// when nothing is redacted, else a rewritten copy in which the redacted
// strings are re-encoded; the findings of every string (their offsets are
// into that string's decoded text); and a *BlockError when a block rule
// fired. A body that is not JSON is returned with an error wrapping
// ErrMalformedEvent.
func (s *Scanner) CheckJSON(body []byte) ([]byte, []Finding, error) {
	if !s.Enabled() {
		return body, nil, nil
	}
	c := &jsonChecker{}
	c.w.visit = c.visit
	if err := c.w.walk(body); err != nil {
		return body, nil, fmt.Errorf("screen: %w: %v", ErrMalformedEvent, err)
	}
	var out, text []byte
	var all []Finding
	last := 0
	for _, f := range c.fields {
		text = appendUnquote(text[:0], body[f.start:f.end])
		red, fs, err := s.Check(unsafe.String(unsafe.SliceData(text), len(text)))
		all = append(all, fs...)
		if err != nil {
			return body, all, err
		}
		if len(fs) == 0 || !redacted(fs) {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(body)+64)
		}
		out = append(out, body[last:f.start]...)
		out = appendQuote(out, []byte(red))
		last = f.end
	}
	if out == nil {
		return body, all, nil
	}
	return append(out, body[last:]...), all, nil
}

func redacted(fs []Finding) bool {
	for _, f := range fs {
		if f.Action == ActionRedact {
			return true
		}
	}
	return false
}
