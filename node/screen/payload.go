package screen

// Format names the JSON payloads a PayloadFilter or CheckJSON reads.
type Format int

const (
	// FormatOpenAI: OpenAI-compatible chat, completions and responses
	// payloads (choices[].delta.content, choices[].text,
	// choices[].message.content, the responses API's "delta" and
	// output[].content[].text).
	FormatOpenAI Format = iota
	// FormatOllama: Ollama's message.content and response.
	FormatOllama
)

// isAnswerText reports whether the walker's current scalar is answer text
// in format f.
func isAnswerText(f Format) func(w *jwalker) bool {
	if f == FormatOllama {
		return func(w *jwalker) bool { return w.at("message", "content") || w.at("response") }
	}
	return func(w *jwalker) bool {
		return w.at("choices", "", "delta", "content") || w.at("choices", "", "text") ||
			w.at("choices", "", "message", "content") || w.at("delta") ||
			w.at("output", "", "content", "", "text")
	}
}

// PayloadFilter screens the text fields of one streamed answer, payload by
// payload (an SSE event's data, an NDJSON line), keeping each payload
// valid JSON. It is the event filter for callers that frame events
// themselves (the guard); SSEFilter and NDJSONFilter wrap the same logic
// with framing. Text held back is emitted at End, or, for Ollama, just
// before the line that says "done": true. It is not safe for concurrent
// use.
type PayloadFilter struct {
	j   *jsonText
	out []byte
	err error
}

// NewPayloadFilter returns a filter for one answer in format f.
func (s *Scanner) NewPayloadFilter(f Format) *PayloadFilter {
	return &PayloadFilter{j: newJSONText(s, isAnswerText(f))}
}

// Payload screens payload and appends what to send in its place to dst,
// each payload through emit (which frames it: "data: …\n\n", "…\n"). It
// may emit nothing (text held back), the payload rewritten, or, on
// Ollama's done line, held-back text first. On a block it returns the
// *BlockError and emits nothing more; later calls return it again.
func (f *PayloadFilter) Payload(dst, payload []byte, emit func(dst, p []byte) []byte) ([]byte, error) {
	if f.err != nil {
		return dst, f.err
	}
	f.out, f.err = f.j.rewrite(f.out[:0], payload)
	if f.err == nil && f.j.done {
		dst, f.err = f.j.flush(dst, emit)
	}
	if f.err != nil {
		return dst, f.err
	}
	return emit(dst, f.out), nil
}

// End releases the text still held back, each payload through emit. Call
// it once, when the answer ends (before OpenAI's "data: [DONE]").
func (f *PayloadFilter) End(dst []byte, emit func(dst, p []byte) []byte) ([]byte, error) {
	if f.err != nil {
		return dst, f.err
	}
	dst, f.err = f.j.flush(dst, emit)
	return dst, f.err
}

// Findings returns what fired so far.
func (f *PayloadFilter) Findings() []Finding { return f.j.findings() }
