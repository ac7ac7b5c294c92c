package screen

import "bytes"

// SSEFilter screens an OpenAI-style server-sent event stream: the
// choices[].delta.content of chat.completion.chunk events and the
// choices[].text of /v1/completions events go through a Stream per choice.
// Each event comes out as one valid event: data lines carry re-encoded
// JSON, other lines (event:, id:, comments) pass unchanged. Text held back
// is emitted in a later event; before "data: [DONE]" (or at Close) what
// is left is sent in a copy of the choice's last text event.
//
// A data payload that is not JSON fails with ErrMalformedEvent: the
// filter cannot screen what it cannot parse, so it does not pass it on.
type SSEFilter struct {
	j    *jsonText
	data []byte // scratch: the event's data
	out  []byte // scratch: rewritten payload
	err  error
}

// NewSSEFilter returns a filter for one response.
func (s *Scanner) NewSSEFilter() *SSEFilter {
	return &SSEFilter{j: newJSONText(s, func(w *jwalker) bool {
		return w.at("choices", "", "delta", "content") || w.at("choices", "", "text")
	})}
}

// Event appends the screened form of one event (its lines and the blank
// line ending it) to dst. On a block it appends an error event in the
// OpenAI shape and returns the *BlockError; the guard should then stop.
func (f *SSEFilter) Event(dst, ev []byte) ([]byte, error) {
	if f.err != nil {
		return dst, f.err
	}
	data, ok := f.collectData(ev)
	if !ok {
		return append(dst, ev...), nil // no data: comments, keep-alives, retry
	}
	var err error
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		if dst, err = f.j.flush(dst, appendSSEData); err == nil {
			dst = appendEventLines(dst, ev, nil)
		}
	} else if f.out, err = f.j.rewrite(f.out[:0], data); err == nil {
		dst = appendEventLines(dst, ev, f.out)
	}
	return f.fail(dst, err)
}

// Close flushes what is still held back (if the upstream ended without
// [DONE]) as final events.
func (f *SSEFilter) Close(dst []byte) ([]byte, error) {
	if f.err != nil {
		return dst, f.err
	}
	dst, err := f.j.flush(dst, appendSSEData)
	return f.fail(dst, err)
}

// Findings returns what fired so far.
func (f *SSEFilter) Findings() []Finding { return f.j.findings() }

func (f *SSEFilter) fail(dst []byte, err error) ([]byte, error) {
	if err == nil {
		return dst, nil
	}
	f.err = err
	if be, ok := err.(*BlockError); ok {
		dst = appendSSEData(dst, be.OpenAIError())
		dst = append(dst, "data: [DONE]\n\n"...)
	}
	return dst, err
}

// collectData joins the event's data lines with '\n', as SSE defines.
func (f *SSEFilter) collectData(ev []byte) ([]byte, bool) {
	f.data = f.data[:0]
	found := false
	for line := range bytes.Lines(ev) {
		v, ok := bytes.CutPrefix(trimEOL(line), []byte("data:"))
		if !ok {
			continue
		}
		if found {
			f.data = append(f.data, '\n')
		}
		found = true
		f.data = append(f.data, bytes.TrimPrefix(v, []byte(" "))...)
	}
	return f.data, found
}

// appendEventLines appends ev with its data lines replaced by one line
// carrying payload (or kept, when payload is nil).
func appendEventLines(dst, ev, payload []byte) []byte {
	wrote := false
	for line := range bytes.Lines(ev) {
		t := trimEOL(line)
		switch {
		case len(t) == 0:
		case bytes.HasPrefix(t, []byte("data:")) && payload != nil:
			if !wrote {
				dst = append(append(append(dst, "data: "...), payload...), '\n')
				wrote = true
			}
		default:
			dst = append(append(dst, t...), '\n')
		}
	}
	return append(dst, '\n')
}

func appendSSEData(dst, payload []byte) []byte {
	dst = append(dst, "data: "...)
	dst = append(dst, payload...)
	return append(dst, "\n\n"...)
}

func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}
