package screen

import (
	"unicode"
	"unicode/utf8"
)

// normText is text folded for phrase matching: ASCII lower case, accents
// and look-alike letters (Cyrillic, Greek, full-width) mapped to ASCII,
// digit and symbol leetspeak undone (1gn0re → ignore), invisible
// characters dropped and every run of other bytes collapsed to one space.
// off[i] is the offset in the source of the byte that produced b[i].
type normText struct {
	b   []byte
	off []int32
}

// asciiFold maps each ASCII byte to its folded form; 0 means "separator".
var asciiFold [128]byte

func init() {
	for c := 'a'; c <= 'z'; c++ {
		asciiFold[c] = byte(c)
		asciiFold[c-'a'+'A'] = byte(c)
	}
	for c := '0'; c <= '9'; c++ {
		asciiFold[c] = byte(c)
	}
	for from, to := range map[byte]byte{'0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', '$': 's'} {
		asciiFold[from] = to
	}
}

// foldRunes maps non-ASCII letters to ASCII; built from foldTable.
var foldRunes = map[rune]string{}

// foldTable lists, per ASCII result, the runes that fold to it: Latin
// accents, and Cyrillic and Greek letters that look like Latin ones.
var foldTable = map[string]string{
	"a": "àáâãäåāăąаαάΑА", "c": "çćĉċčсϲС", "d": "ďđԁ", "e": "èéêëēĕėęěеєεέЕΕ",
	"g": "ĝğġģɡ", "h": "ĥħһНΗ", "i": "ìíîïĩīĭįıіїιίΙІ", "j": "ĵјЈ", "k": "ķкκКΚ",
	"l": "ĺļľŀłӏ", "m": "мМΜ", "n": "ñńņňŉпηΝ", "o": "òóôõöøōŏőоοόОΟ", "p": "рρРΡ",
	"r": "ŕŗřг", "s": "śŝşšѕЅ", "t": "ţťŧтτТΤ", "u": "ùúûüũūŭůűųυ", "w": "ŵѡ",
	"x": "хχХΧ", "y": "ýÿŷуУΥ", "z": "źżžΖ", "b": "вВΒь", "v": "ν", "ss": "ß",
	"ae": "æ", "oe": "œ",
}

func init() {
	for to, from := range foldTable {
		for _, r := range from {
			foldRunes[r] = to
		}
	}
}

// invisible reports runes that render as nothing: zero-width characters,
// bidi controls, soft hyphens, variation selectors and tag characters.
func invisible(r rune) bool {
	switch {
	case r == 0xAD, r == 0x180E, r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E,
		r >= 0x2060 && r <= 0x2069, r == 0xFEFF, r >= 0xFE00 && r <= 0xFE0F:
		return true
	}
	return r >= 0xE0000 && r <= 0xE007F
}

// normalize folds s into t (reusing its buffers).
// The output is never longer than s (a rune folds to at most as many
// bytes as it takes), so the ASCII path writes into buffers sized once,
// by index, without append's checks at every byte; runes go through
// putRune.
func (t *normText) normalize(s string) {
	if cap(t.b) < len(s) || cap(t.off) < len(s) {
		t.b, t.off = make([]byte, 0, len(s)+len(s)/4), make([]int32, 0, len(s)+len(s)/4)
	}
	b, off := t.b[:len(s)], t.off[:len(s)]
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if f := asciiFold[c]; f != 0 {
				b[n], off[n] = f, int32(i)
				n++
			} else if n > 0 && b[n-1] != ' ' {
				b[n], off[n] = ' ', int32(i)
				n++
			}
			i++
			continue
		}
		t.b, t.off = b[:n], off[:n]
		r, k := utf8.DecodeRuneInString(s[i:])
		t.putRune(r, i)
		n = len(t.b)
		b, off = t.b[:len(s)], t.off[:len(s)] // put appended within the capacity
		i += k
	}
	t.b, t.off = b[:n], off[:n]
}

func (t *normText) putRune(r rune, at int) {
	switch {
	case r >= 0xE0020 && r <= 0xE007E: // tag characters spell ASCII invisibly
		t.put(asciiFold[r-0xE0000], at)
	case invisible(r):
	case r >= 0xFF01 && r <= 0xFF5E: // full-width forms
		t.put(asciiFold[r-0xFEE0], at)
	default:
		if f, ok := foldRunes[r]; ok {
			for k := 0; k < len(f); k++ {
				t.put(f[k], at)
			}
		} else if unicode.IsLetter(r) {
			t.put('#', at)
		} else {
			t.put(0, at)
		}
	}
}

// put appends one folded byte; 0 is a separator, collapsed with its
// neighbours and dropped at the start.
func (t *normText) put(c byte, at int) {
	if c == 0 {
		if len(t.b) == 0 || t.b[len(t.b)-1] == ' ' {
			return
		}
		c = ' '
	}
	t.b = append(t.b, c)
	t.off = append(t.off, int32(at))
}

// span maps the normalised range [a, b) back to source offsets; srcLen is
// the length of the source.
func (t *normText) span(a, b, srcLen int) (int, int) {
	end := srcLen
	if b < len(t.off) {
		end = int(t.off[b])
	}
	return int(t.off[a]), end
}
