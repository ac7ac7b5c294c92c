package guard

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"
)

// readAllSized reads r to its end into a buffer sized for n bytes (a
// Content-Length; ≤ 0 when unknown) up to maxPrealloc, so a usual body is
// read without regrowing; a larger one grows (doubling) as it arrives.
func readAllSized(r io.Reader, n, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if n > 0 && n <= limit {
		// A claimed length is trusted only so far before bytes arrive: a
		// caller holding slow connections must not reserve much with each.
		buf.Grow(int(min(n, maxPrealloc)) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// maxPrealloc is the most readAllSized reserves on a length's word alone:
// more than most chat requests, little next to a connection's other
// buffers (docs/guard.md has the memory per connection).
const maxPrealloc = 16 << 10

// maxPlainKeys bounds the keys plainKeys compares; objects with more are
// treated as not plain (re-encoded).
const maxPlainKeys = 64

// plainKeys reports whether the JSON object b (already validated) has
// only distinct keys without escapes at its top level. Only then may the
// guard forward a body it did not change as received: a duplicated key,
// plain or disguised by escapes ("mod\u0065l"), could make the model
// server read another value than the guard did.
func plainKeys(b []byte) bool {
	var keys [maxPlainKeys][]byte
	n, depth := 0, 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		case '"':
			end, escaped := stringEnd(b, i)
			if depth == 1 && isKey(b, end) {
				if escaped || n == len(keys) {
					return false
				}
				k := b[i+1 : end-1]
				for _, seen := range keys[:n] {
					if bytes.Equal(seen, k) {
						return false
					}
				}
				keys[n], n = k, n+1
			}
			i = end - 1
		}
	}
	return true
}

// stringEnd returns the index after the string literal starting at b[i]
// and whether it holds escapes.
func stringEnd(b []byte, i int) (int, bool) {
	escaped := false
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return len(b), escaped
}

// isKey reports whether the string ending before b[end] is followed by ':'.
func isKey(b []byte, end int) bool {
	for ; end < len(b); end++ {
		switch b[end] {
		case ' ', '\t', '\r', '\n':
			continue
		case ':':
			return true
		}
		return false
	}
	return false
}

// splitObject reads body as a JSON object into its members' raw values,
// as json.Unmarshal into a map[string]json.RawMessage does (a repeated
// key keeps its last value), except that the values share body's memory.
// It returns false for anything but a valid object whose keys are plain
// UTF-8 without escapes; json.Unmarshal then reads it (and words the
// error).
func splitObject(body []byte) (map[string]json.RawMessage, bool) {
	s := jscan{b: body}
	if s.peek() != '{' {
		return nil, false
	}
	m := make(map[string]json.RawMessage, 16)
	for more := s.enter('{', '}'); more; more = s.more('}') {
		k, esc := s.key()
		if !s.ok() || esc || !utf8.Valid(k) {
			return nil, false
		}
		start := s.i
		s.skip(1)
		if !s.ok() {
			return nil, false
		}
		v := bytes.TrimLeft(body[start:s.i], " \t\r\n")
		m[string(k)] = v[:len(v):len(v)] // no append can reach into body
	}
	s.end()
	if !s.ok() {
		return nil, false
	}
	return m, true
}

// unmarshalBool is json.Unmarshal(raw, dst) for a bool.
func unmarshalBool(raw []byte, dst *bool) error {
	switch string(raw) {
	case "true":
		*dst = true
		return nil
	case "false":
		*dst = false
		return nil
	}
	return json.Unmarshal(raw, dst)
}

// unmarshalInt64 is json.Unmarshal(raw, dst) for an int64, without
// reflection when raw is an integer literal in range.
func unmarshalInt64(raw []byte, dst *int64) error {
	s := jscan{b: raw}
	if c := s.peek(); c == '-' || isDigit(c) {
		tok, integer := s.number()
		if s.ok() && integer && s.i == len(raw) {
			if n, ok := parseInt64(tok); ok {
				*dst = n
				return nil
			}
		}
	}
	return json.Unmarshal(raw, dst)
}
