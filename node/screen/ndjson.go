package screen

import "bytes"

// NDJSONFilter screens an Ollama NDJSON stream: message.content (/api/chat)
// and response (/api/generate) go through a Stream; every output line is
// valid JSON. Text held back is emitted in later lines; when a line says
// "done": true, what is left is sent first, in a copy of the last text
// line, so the final line still comes last.
//
// A line that is not JSON fails with ErrMalformedEvent (see SSEFilter).
type NDJSONFilter struct {
	j   *jsonText
	out []byte
	err error
}

// NewNDJSONFilter returns a filter for one response.
func (s *Scanner) NewNDJSONFilter() *NDJSONFilter {
	return &NDJSONFilter{j: newJSONText(s, func(w *jwalker) bool {
		return w.at("message", "content") || w.at("response")
	})}
}

// Event appends the screened form of one line (with its newline) to dst.
// On a block it appends {"error":...} and returns the *BlockError.
func (f *NDJSONFilter) Event(dst, line []byte) ([]byte, error) {
	if f.err != nil {
		return dst, f.err
	}
	if len(bytes.TrimSpace(line)) == 0 {
		return append(dst, line...), nil
	}
	mark := len(dst)
	var err error
	f.out, err = f.j.rewrite(f.out[:0], trimEOL(line))
	if err == nil && f.j.done {
		dst, err = f.j.flush(dst, appendLine)
	}
	if err == nil {
		return appendLine(dst, f.out), nil
	}
	return f.fail(dst[:mark], err)
}

// Close flushes what is still held back (if the upstream ended without a
// done line).
func (f *NDJSONFilter) Close(dst []byte) ([]byte, error) {
	if f.err != nil {
		return dst, f.err
	}
	dst, err := f.j.flush(dst, appendLine)
	if err != nil {
		return f.fail(dst, err)
	}
	return dst, nil
}

// Findings returns what fired so far.
func (f *NDJSONFilter) Findings() []Finding { return f.j.findings() }

func (f *NDJSONFilter) fail(dst []byte, err error) ([]byte, error) {
	f.err = err
	if be, ok := err.(*BlockError); ok {
		dst = appendLine(dst, be.OllamaError())
	}
	return dst, err
}

func appendLine(dst, payload []byte) []byte {
	return append(append(dst, payload...), '\n')
}
