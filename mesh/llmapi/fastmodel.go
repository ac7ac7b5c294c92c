package llmapi

import (
	"encoding/json"
	"strings"
	"unsafe"
)

// readModelFast is ReadModel for a plain body, without building a map of
// every member (the client's router reads every request's model, and the
// map and its copies of each value were a quarter of its handler's CPU):
// a valid JSON object whose top-level keys have no escapes and none of
// which differs from one of a.Keys only in case. ok false means the body
// is not plain, and the caller takes the general way, which also words
// every error about the body's shape. For a plain body the result,
// errors included, is the general way's (a repeated key keeps its last
// value, as encoding/json does into a map); FuzzReadModel checks it.
func readModelFast(body []byte, a *API) (model string, err error, ok bool) {
	var vals [4][]byte // a.ModelKeys' values, by index
	if len(a.ModelKeys) > len(vals) || !json.Valid(body) {
		return "", nil, false
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return "", nil, false
	}
	i = skipSpace(body, i+1)
	for body[i] != '}' {
		if body[i] == ',' {
			i = skipSpace(body, i+1)
		}
		end, esc := stringEnd(body, i)
		if esc {
			return "", nil, false
		}
		k := body[i+1 : end-1]
		ks := unsafe.String(unsafe.SliceData(k), len(k)) // read only, here
		for _, name := range a.Keys {
			if ks != name && strings.EqualFold(ks, name) {
				return "", nil, false
			}
		}
		i = skipSpace(body, end)
		i = skipSpace(body, i+1) // past ':'
		v := i
		i = skipValue(body, i)
		for j, mk := range a.ModelKeys {
			if ks == mk {
				vals[j] = body[v:i]
			}
		}
		i = skipSpace(body, i)
	}
	model, _, err = a.model(func(k string) ([]byte, bool) {
		for j, mk := range a.ModelKeys {
			if mk == k {
				return vals[j], vals[j] != nil
			}
		}
		return nil, false
	})
	return model, err, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the string literal that opens at
// b[i] (valid JSON), and whether it holds an escape.
func stringEnd(b []byte, i int) (end int, esc bool) {
	for j := i + 1; ; j++ {
		switch b[j] {
		case '\\':
			esc = true
			j++
		case '"':
			return j + 1, esc
		}
	}
}

// skipValue returns the index after the value that starts at b[i]
// (valid JSON).
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				end, _ := stringEnd(b, i)
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++
	}
	return i
}
