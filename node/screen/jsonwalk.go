package screen

import "errors"

// errBadJSON is returned for payloads that are not one JSON value.
var errBadJSON = errors.New("not valid JSON")

// maxJSONDepth bounds nesting, so hostile input cannot exhaust the stack.
const maxJSONDepth = 64

// jseg is one step of a JSON path: an object key (raw bytes, escapes
// untouched) or an array index.
type jseg struct {
	key []byte
	idx int
}

// jwalker validates a JSON value and reports each scalar value with its
// path. It allocates nothing.
type jwalker struct {
	b     []byte
	path  [8]jseg
	depth int
	visit func(w *jwalker, start, end int) // b[start:end] is a scalar; strings keep their quotes
}

// walk validates b as exactly one JSON value (surrounded by white space).
func (w *jwalker) walk(b []byte) error {
	w.b, w.depth = b, 0
	i, err := w.value(ws(b, 0))
	if err != nil {
		return err
	}
	if ws(b, i) != len(b) {
		return errBadJSON
	}
	return nil
}

// at reports whether the current path is keys, where "" matches any array
// index and other entries match object keys.
func (w *jwalker) at(keys ...string) bool {
	if w.depth != len(keys) {
		return false
	}
	for i, k := range keys {
		seg := w.path[i]
		if (k == "") != (seg.key == nil) || (k != "" && string(seg.key) != k) {
			return false
		}
	}
	return true
}

func ws(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func (w *jwalker) value(i int) (int, error) {
	if i >= len(w.b) {
		return 0, errBadJSON
	}
	switch c := w.b[i]; {
	case c == '{':
		return w.object(i + 1)
	case c == '[':
		return w.array(i + 1)
	case c == '"':
		return w.scalar(i, stringEnd(w.b, i))
	case c == 't':
		return w.literal(i, "true")
	case c == 'f':
		return w.literal(i, "false")
	case c == 'n':
		return w.literal(i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return w.scalar(i, numberEnd(w.b, i))
	}
	return 0, errBadJSON
}

func (w *jwalker) scalar(i, end int) (int, error) {
	if end < 0 {
		return 0, errBadJSON
	}
	if w.visit != nil && w.depth <= len(w.path) {
		w.visit(w, i, end)
	}
	return end, nil
}

func (w *jwalker) literal(i int, lit string) (int, error) {
	if len(w.b)-i < len(lit) || string(w.b[i:i+len(lit)]) != lit {
		return 0, errBadJSON
	}
	return w.scalar(i, i+len(lit))
}

// push enters a nested value.
func (w *jwalker) push(seg jseg) error {
	if w.depth >= maxJSONDepth {
		return errBadJSON
	}
	if w.depth < len(w.path) {
		w.path[w.depth] = seg
	}
	w.depth++
	return nil
}

func (w *jwalker) object(i int) (int, error) {
	i = ws(w.b, i)
	if i < len(w.b) && w.b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(w.b) || w.b[i] != '"' {
			return 0, errBadJSON
		}
		ke := stringEnd(w.b, i)
		if ke < 0 {
			return 0, errBadJSON
		}
		j := ws(w.b, ke)
		if j >= len(w.b) || w.b[j] != ':' {
			return 0, errBadJSON
		}
		if err := w.push(jseg{key: w.b[i+1 : ke-1]}); err != nil {
			return 0, err
		}
		j, err := w.value(ws(w.b, j+1))
		w.depth--
		if err != nil {
			return 0, err
		}
		var closed bool
		if i, closed, err = w.next(j, '}'); err != nil || closed {
			return i, err
		}
	}
}

// next reads the ',' or the closing byte after a member: it returns the
// index of the next member, or the index after the container and true.
func (w *jwalker) next(j int, close byte) (int, bool, error) {
	j = ws(w.b, j)
	switch {
	case j < len(w.b) && w.b[j] == ',':
		return ws(w.b, j+1), false, nil
	case j < len(w.b) && w.b[j] == close:
		return j + 1, true, nil
	}
	return 0, false, errBadJSON
}

func (w *jwalker) array(i int) (int, error) {
	i = ws(w.b, i)
	if i < len(w.b) && w.b[i] == ']' {
		return i + 1, nil
	}
	for n := 0; ; n++ {
		if err := w.push(jseg{idx: n}); err != nil {
			return 0, err
		}
		j, err := w.value(i)
		w.depth--
		if err != nil {
			return 0, err
		}
		var closed bool
		if i, closed, err = w.next(j, ']'); err != nil || closed {
			return i, err
		}
	}
}

// stringEnd returns the index after the string literal at b[i], or -1.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		for j < len(b) && stringByte[b[j]] { // the plain bytes, in a tight loop
			j++
		}
		if j == len(b) {
			break
		}
		switch c := b[j]; {
		case c == '"':
			return j + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if j+1 >= len(b) {
				return -1
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j++
			case 'u':
				if j+5 >= len(b) || !allHexBytes(b[j+2:j+6]) {
					return -1
				}
				j += 5
			default:
				return -1
			}
		}
	}
	return -1
}

func allHexBytes(b []byte) bool {
	for _, c := range b {
		if class[c]&cHex == 0 {
			return false
		}
	}
	return true
}

// numberEnd returns the index after the number at b[i], or -1.
func numberEnd(b []byte, i int) int {
	if b[i] == '-' {
		i++
	}
	d := digitsEnd(b, i)
	if d == i || (b[i] == '0' && d > i+1) {
		return -1
	}
	i = d
	if i < len(b) && b[i] == '.' {
		if d = digitsEnd(b, i+1); d == i+1 {
			return -1
		}
		i = d
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if d = digitsEnd(b, i); d == i {
			return -1
		}
		i = d
	}
	return i
}

func digitsEnd(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

// stringByte tells the bytes stringEnd passes over as they are: neither
// control characters nor quotes nor backslashes.
var stringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()
