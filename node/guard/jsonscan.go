package guard

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

// jscan is a validating single-pass JSON reader for the few fields the
// guard reads of an upstream's answers (fastTally). It accepts exactly
// the documents encoding/json accepts and reads values as encoding/json
// would decode them; whatever it is unsure about (escaped or
// case-folded keys, duplicated fields, deep nesting) it gives up on, and
// the caller asks encoding/json instead.
type jscan struct {
	b     []byte
	i     int
	state scanState
}

type scanState uint8

const (
	scanOK   scanState = iota
	scanZero           // not JSON, or a type encoding/json refuses: the payload reads as nothing
	scanSlow           // a shape left to encoding/json
)

// maxScanDepth is the nesting past which jscan leaves a document to
// encoding/json (which allows 10000).
const maxScanDepth = 64

// stop records the first reason to stop; later ones are ignored.
func (s *jscan) stop(st scanState) {
	if s.state == scanOK {
		s.state = st
	}
}

func (s *jscan) ok() bool { return s.state == scanOK }

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space; 0 at the end.
func (s *jscan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// end checks that only white space follows the top-level value.
func (s *jscan) end() {
	if s.peek() != 0 || s.i != len(s.b) {
		s.stop(scanZero)
	}
}

// enter consumes open ('{' or '[') and reports whether the container has
// members (false when it is empty, its close consumed, or on failure).
func (s *jscan) enter(open, close byte) bool {
	if s.peek() != open {
		s.stop(scanZero)
		return false
	}
	s.i++
	if s.peek() == close {
		s.i++
		return false
	}
	return s.ok()
}

// more consumes what follows a member: ',' (true) or close (false).
func (s *jscan) more(close byte) bool {
	switch s.peek() {
	case ',':
		s.i++
		return s.ok()
	case close:
		s.i++
		return false
	}
	s.stop(scanZero)
	return false
}

// key reads an object key and its colon and returns the key without its
// quotes, and whether it has escapes.
func (s *jscan) key() (k []byte, esc bool) {
	if s.peek() != '"' {
		s.stop(scanZero)
		return nil, false
	}
	raw, _, esc := s.str()
	if !s.ok() || s.peek() != ':' {
		s.stop(scanZero)
		return nil, false
	}
	s.i++
	return raw[1 : len(raw)-1], esc
}

// str reads a string literal at s.i and returns it raw (with quotes), the
// length encoding/json decodes it to (escapes resolved, invalid UTF-8 and
// lone surrogates replaced by U+FFFD) and whether it has escapes.
func (s *jscan) str() (raw []byte, n int, esc bool) {
	start := s.i
	i := s.i + 1
	for i < len(s.b) {
		c := s.b[i]
		switch {
		case c == '"':
			s.i = i + 1
			return s.b[start:s.i], n, esc
		case c == '\\':
			esc = true
			w, adv := escLen(s.b[i:])
			if adv == 0 {
				s.stop(scanZero)
				return nil, 0, false
			}
			n, i = n+w, i+adv
		case c < 0x20:
			s.stop(scanZero)
			return nil, 0, false
		case c < utf8.RuneSelf:
			n, i = n+1, i+1
		default:
			r, size := utf8.DecodeRune(s.b[i:])
			if r == utf8.RuneError && size == 1 {
				n += 3 // replaced by U+FFFD
			} else {
				n += size
			}
			i += size
		}
	}
	s.stop(scanZero)
	return nil, 0, false
}

// escLen reads the escape at b[0] ('\\') and returns the bytes it decodes
// to and the bytes it takes (0: invalid).
func escLen(b []byte) (w, adv int) {
	if len(b) < 2 {
		return 0, 0
	}
	switch b[1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 1, 2
	case 'u':
		r := hex4(b)
		if r < 0 {
			return 0, 0
		}
		if utf16.IsSurrogate(r) {
			if r2 := hex4(b[6:]); r2 >= 0 && utf16.DecodeRune(r, r2) != utf8.RuneError {
				return 4, 12 // a valid pair
			}
			return 3, 6 // U+FFFD; what follows is read on its own
		}
		return utf8.RuneLen(r), 6
	}
	return 0, 0
}

// hex4 reads `\uXXXX` at b[0]; -1 if it is not one.
func hex4(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// null consumes a null literal if one is next.
func (s *jscan) null() bool {
	if s.peek() == 'n' {
		s.lit("null")
		return true
	}
	return false
}

func (s *jscan) lit(word string) {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		s.stop(scanZero)
		return
	}
	s.i += len(word)
}

// number reads a number literal and reports whether it is an integer
// (no fraction, no exponent).
func (s *jscan) number() (tok []byte, integer bool) {
	start, b := s.i, s.b
	i := s.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		s.stop(scanZero)
		return nil, false
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		if i++; i >= len(b) || !isDigit(b[i]) {
			s.stop(scanZero)
			return nil, false
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		if i++; i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			s.stop(scanZero)
			return nil, false
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	s.i = i
	return b[start:i], integer
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skip validates and passes over one value of any type.
func (s *jscan) skip(depth int) {
	if depth > maxScanDepth {
		s.stop(scanSlow)
		return
	}
	switch c := s.peek(); {
	case c == '{':
		for more := s.enter('{', '}'); more; more = s.more('}') {
			s.key()
			s.skip(depth + 1)
		}
	case c == '[':
		for more := s.enter('[', ']'); more; more = s.more(']') {
			s.skip(depth + 1)
		}
	case c == '"':
		s.str()
	case c == 't':
		s.lit("true")
	case c == 'f':
		s.lit("false")
	case c == 'n':
		s.lit("null")
	case c == '-' || isDigit(c):
		s.number()
	default:
		s.stop(scanZero)
	}
}

// text reads a value decoded into a Go string and returns its decoded
// length: a string, or null (0). Anything else is a type error.
func (s *jscan) text() int {
	if s.null() {
		return 0
	}
	if s.peek() != '"' {
		s.stop(scanZero)
		return 0
	}
	_, n, _ := s.str()
	return n
}

// int64 reads a value decoded into a Go int64: an integer in range, or
// null (which leaves *dst alone).
func (s *jscan) int64(dst *int64) {
	if s.null() {
		return
	}
	if c := s.peek(); c != '-' && !isDigit(c) {
		s.stop(scanZero)
		return
	}
	tok, integer := s.number()
	if !s.ok() {
		return
	}
	n, ok := parseInt64(tok)
	if !integer || !ok {
		s.stop(scanZero) // encoding/json: cannot unmarshal number into int64
		return
	}
	*dst = n
}

// parseInt64 parses a JSON integer literal; false when out of range.
func parseInt64(tok []byte) (int64, bool) {
	neg := tok[0] == '-'
	if neg {
		tok = tok[1:]
	}
	var u uint64
	for _, c := range tok {
		if u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
		if u > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return -int64(u), true // -(1<<63) wraps to itself: math.MinInt64
	}
	if u == 1<<63 {
		return 0, false
	}
	return int64(u), true
}

// boolean reads a value decoded into a Go bool: true, false, or null
// (which leaves *dst alone).
func (s *jscan) boolean(dst *bool) {
	switch s.peek() {
	case 'n':
		s.lit("null")
	case 't':
		s.lit("true")
		*dst = true
	case 'f':
		s.lit("false")
		*dst = false
	default:
		s.stop(scanZero)
	}
}

// object reads a value decoded into a struct (or a pointer to one): an
// object, whose known members field reads and whose others are skipped,
// or null (false). names are the struct's JSON names; a key that is not
// one of them exactly but equals one case-insensitively, or a name that
// appears twice, is left to encoding/json.
func (s *jscan) object(depth int, names []string, field func(i int)) bool {
	if s.null() {
		return false
	}
	if depth > maxScanDepth {
		s.stop(scanSlow)
		return false
	}
	var seen uint32
	for more := s.enter('{', '}'); more; more = s.more('}') {
		k, esc := s.key()
		if !s.ok() {
			return false
		}
		i := lookupName(names, k)
		switch {
		case esc: // encoding/json compares keys unescaped
			s.stop(scanSlow)
		case i >= 0 && seen&(1<<i) != 0:
			s.stop(scanSlow)
		case i >= 0:
			seen |= 1 << i
			field(i)
		case foldsToName(names, k):
			s.stop(scanSlow)
		default:
			s.skip(depth + 1)
		}
	}
	return s.state != scanZero
}

func lookupName(names []string, k []byte) int {
	for i, n := range names {
		if string(k) == n {
			return i
		}
	}
	return -1
}

// foldsToName reports whether encoding/json would match k to one of
// names case-insensitively.
func foldsToName(names []string, k []byte) bool {
	for _, n := range names {
		if bytes.EqualFold(k, []byte(n)) {
			return true
		}
	}
	return false
}
