package guard

import (
	"bytes"
	"io"
)

// readAllSized reads r to its end into a buffer sized for n bytes (a
// Content-Length; ≤ 0 when unknown), so a body of known length is read
// without regrowing.
func readAllSized(r io.Reader, n, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if n > 0 && n <= limit {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

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
