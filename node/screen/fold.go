package screen

import (
	"encoding/binary"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// foldText is text prepared for the detectors when it holds characters
// that hide or disguise a match: invisible runes (zero-width characters,
// soft hyphens, bidi controls) are dropped and compatibility forms
// (full-width letters, ligatures, circled digits) are replaced by their
// NFKC form. start[i] and end[i] are the source bytes of the rune that
// produced b[i], so a match maps back onto the source, hidden runes and
// all.
type foldText struct {
	b          []byte
	start, end []int32
}

// needsFold reports whether s holds a rune foldText changes. Pure ASCII,
// and text whose non-ASCII runes are all NFKC-stable and visible, is
// scanned as it is.
func needsFold(s string) bool {
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i = nextNonASCII(s, i+1)
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if invisible(r) || compat(r) {
			return true
		}
		i += n
	}
	return false
}

// fold fills f from s.
func (f *foldText) fold(s string) {
	f.b, f.start, f.end = f.b[:0], f.start[:0], f.end[:0]
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			f.put(s[i:i+1], i, i+1)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case invisible(r):
		case compat(r):
			f.put(norm.NFKC.String(s[i:i+n]), i, i+n)
		default:
			f.put(s[i:i+n], i, i+n)
		}
		i += n
	}
}

func (f *foldText) put(b string, start, end int) {
	f.b = append(f.b, b...)
	for range len(b) {
		f.start, f.end = append(f.start, int32(start)), append(f.end, int32(end))
	}
}

// source maps the spans found in the folded text back onto the source.
func (f *foldText) source(sp []span) {
	for i := range sp {
		sp[i].start = int(f.start[sp[i].start])
		sp[i].end = int(f.end[sp[i].end-1])
	}
}

// compat reports runes with a compatibility form NFKC replaces, in the
// blocks that disguise ASCII: Latin-1 symbols (NBSP, superscripts),
// spaces and punctuation, super- and subscripts, letter-like symbols,
// enclosed alphanumerics, ligatures, full-width forms and mathematical
// letters. Checking the blocks first keeps ordinary text (accents, CJK)
// off the slower, allocating normaliser.
func compat(r rune) bool {
	switch {
	case r >= 0xA0 && r <= 0xBF, r >= 0x2000 && r <= 0x24FF, r >= 0xFB00 && r <= 0xFB4F,
		r >= 0xFF00 && r <= 0xFFEF, r >= 0x1D400 && r <= 0x1D7FF:
		var b [4]byte
		return !norm.NFKC.IsNormal(b[:utf8.EncodeRune(b[:], r)])
	}
	return false
}

// nextNonASCII returns the index of the first byte of s from i on that is
// not ASCII, or len(s); it tests eight bytes at a time.
func nextNonASCII(s string, i int) int {
	for ; i+8 <= len(s); i += 8 {
		if binary.LittleEndian.Uint64([]byte(s[i:i+8]))&0x8080808080808080 != 0 {
			break
		}
	}
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	return i
}
