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

// Eight-byte words for the searches below: ones has 1 in every byte.
const (
	ones  = 0x0101010101010101
	low7  = 0x7f7f7f7f7f7f7f7f
	highs = 0x8080808080808080
)

// word8 returns s[i:i+8] as a little-endian word.
func word8(s string, i int) uint64 { return binary.LittleEndian.Uint64([]byte(s[i : i+8])) }

// between has the high bit set in each byte of x that is in (m, n), for
// m >= 0 and n <= 128 (the "has between" test of Bit Twiddling Hacks; a
// non-ASCII byte never has it).
func between(x, m, n uint64) uint64 {
	return (ones*(127+n) - x&low7) &^ x & (x&low7 + ones*(127-m)) & highs
}

// zeroByte is non-zero when a byte of x is zero.
func zeroByte(x uint64) uint64 { return (x - ones) &^ x & highs }

// nextIn returns the index of the first byte of s from i on that is in
// [lo, hi] (1 <= lo <= hi <= 127), or len(s). It tests eight bytes at a
// time while none can be.
func nextIn(s string, i int, lo, hi byte) int {
	for ; i+8 <= len(s); i += 8 {
		if between(word8(s, i), uint64(lo-1), uint64(hi+1)) != 0 {
			break
		}
	}
	for i < len(s) && (s[i] < lo || s[i] > hi) {
		i++
	}
	return i
}

// nextOf returns the index of the first byte of s from i on that is in
// set, or len(s); list holds the bytes of set (one to four), for a test
// of eight bytes at a time.
func nextOf(s string, i int, list string, set *charset) int {
	var pats [4]uint64
	for k := range pats {
		pats[k] = ones * uint64(list[min(k, len(list)-1)])
	}
	for ; i+8 <= len(s); i += 8 {
		x := word8(s, i)
		if zeroByte(x^pats[0])|zeroByte(x^pats[1])|zeroByte(x^pats[2])|zeroByte(x^pats[3]) != 0 {
			break
		}
	}
	for i < len(s) && !set[s[i]] {
		i++
	}
	return i
}

// nextDigit returns the index of the first digit of s from i on, or len(s).
func nextDigit(s string, i int) int { return nextIn(s, i, '0', '9') }

// nextNumber returns the index of the first byte of s from i on that may
// start a number (a digit, '+' or '('), or len(s).
func nextNumber(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		x := word8(s, i)
		if between(x, '0'-1, '9'+1)|zeroByte(x^(ones*'+'))|zeroByte(x^(ones*'(')) != 0 {
			break
		}
	}
	for i < len(s) && !isDigit(s[i]) && s[i] != '+' && s[i] != '(' {
		i++
	}
	return i
}
