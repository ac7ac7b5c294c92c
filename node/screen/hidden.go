package screen

import "unicode/utf8"

// findHidden finds invisible text: Unicode tag characters (which spell
// ASCII no one sees), bidi override controls (Trojan Source) and runs of
// three or more zero-width characters (binary-encoded payloads). A single
// zero-width joiner, as in emoji sequences, or a lone zero-width space, as
// in copied web text, is left alone.
func findHidden(c *ctx, s string) {
	for i := 0; i < len(s); i++ {
		if s[i] < 0xE2 {
			i = nextNonASCII(s, i+1) - 1
			continue
		}
		start, end, fire := hiddenRun(s, i)
		if fire {
			c.add(rHidden, start, end)
		}
		if end > i {
			i = end - 1
		}
	}
}

// hiddenRun reads the run of invisible runes at s[i:] and reports whether
// it is hidden text.
func hiddenRun(s string, i int) (start, end int, fire bool) {
	start, end = i, i
	zw := 0
	for end < len(s) {
		r, n := utf8.DecodeRuneInString(s[end:])
		switch {
		case r >= 0xE0000 && r <= 0xE007F, r == 0x202D, r == 0x202E:
			fire = true
		case r >= 0x200B && r <= 0x200D, r == 0x2060, r == 0xFEFF && end > 0:
			zw++
		default:
			return start, end, fire || zw >= 3
		}
		end += n
	}
	return start, end, fire || zw >= 3
}
