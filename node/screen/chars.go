package screen

import "encoding/binary"

// Byte classes, as tables so the hot loops do one load per byte.
const (
	cDigit   = 1 << iota // 0-9
	cUpper               // A-Z
	cLower               // a-z
	cTok                 // [A-Za-z0-9_-]: the bytes of a token run
	cB64                 // [A-Za-z0-9+/=]
	cURLSafe             // [A-Za-z0-9_-] plus '.', for JWTs and tails
	cHex                 // [0-9a-fA-F]
	cDomain              // [A-Za-z0-9.-]
)

var class [256]uint8

func init() {
	for c := 0; c < 256; c++ {
		var k uint8
		switch {
		case c >= '0' && c <= '9':
			k = cDigit | cTok | cB64 | cURLSafe | cDomain
			k |= cHex
		case c >= 'A' && c <= 'Z':
			k = cUpper | cTok | cB64 | cURLSafe | cDomain
		case c >= 'a' && c <= 'z':
			k = cLower | cTok | cB64 | cURLSafe | cDomain
		}
		if (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') {
			k |= cHex
		}
		switch c {
		case '_':
			k |= cTok | cURLSafe
		case '-':
			k |= cTok | cURLSafe | cDomain
		case '+', '/', '=':
			k |= cB64
		case '.':
			k |= cURLSafe | cDomain
		}
		class[c] = k
	}
}

func isDigit(c byte) bool { return class[c]&cDigit != 0 }
func isAlnum(c byte) bool { return class[c]&(cDigit|cUpper|cLower) != 0 }
func isAlpha(c byte) bool { return class[c]&(cUpper|cLower) != 0 }
func isTok(c byte) bool   { return class[c]&cTok != 0 }
func has(c byte, k uint8) bool {
	return class[c]&k != 0
}

// runOf returns the end of the run of bytes of class k starting at i.
func runOf(s string, i int, k uint8) int {
	for i < len(s) && class[s[i]]&k != 0 {
		i++
	}
	return i
}

// lower folds an ASCII byte to lower case.
func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// nextIn returns the index of the first byte of s from i on that is in
// [lo, hi] (1 <= lo <= hi <= 127), or len(s). It tests eight bytes at a
// time while none can be (the "has between" test of Bit Twiddling Hacks;
// non-ASCII bytes never pass it).
func nextIn(s string, i int, lo, hi byte) int {
	const ones, low7, highs = 0x0101010101010101, 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	m, n := uint64(lo-1), uint64(hi+1)
	for ; i+8 <= len(s); i += 8 {
		x := binary.LittleEndian.Uint64([]byte(s[i : i+8]))
		if (ones*(127+n)-x&low7)&^x&(x&low7+ones*(127-m))&highs != 0 {
			break
		}
	}
	for i < len(s) && (s[i] < lo || s[i] > hi) {
		i++
	}
	return i
}

// nextDigit returns the index of the first digit of s from i on, or len(s).
func nextDigit(s string, i int) int { return nextIn(s, i, '0', '9') }
