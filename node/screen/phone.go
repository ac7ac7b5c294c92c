package screen

import "bytes"

// phoneWords, lower-cased, make a nearby number a phone number.
var phoneWords = [][]byte{
	[]byte("phone"), []byte("tel"), []byte("mobile"), []byte("cell"), []byte("call"),
	[]byte("fax"), []byte("whatsapp"), []byte("handy"), []byte("telefon"), []byte("numéro"),
	[]byte("número"), []byte("movil"), []byte("móvil"), []byte("portable"), []byte("contact"),
	[]byte("rufnummer"), []byte("sms"),
}

// phoneGroups returns how many groups form a phone number, or 0:
// international (+CC, 8-15 digits), US (555) 123-4567 or 555-123-4567,
// French 06 12 34 56 78, or 7-15 digits right after a phone word.
func phoneGroups(s string, i int, g *digitGroups) int {
	last := g.n
	for last > 0 && g.digits(last) > 15 {
		last--
	}
	if last == 0 || followedByNumber(s, g.end[last-1]) && last == g.n {
		return 0
	}
	d := g.digits(last)
	switch {
	case g.plus && d >= 8 && last >= 2:
		return last
	case last >= 3 && g.len[0] == 3 && g.len[1] == 3 && g.len[2] == 4 && usSeps(g):
		return 3
	case last >= 5 && frenchLayout(s, i, g):
		return 5
	case d >= 7 && phoneContext(s, i) && minGroup(g, last) >= 2:
		return last
	}
	return 0
}

func usSeps(g *digitGroups) bool {
	a, b := g.sep[1], g.sep[2]
	return (a == b && (a == '-' || a == '.' || a == ' ')) || (g.paren && (b == '-' || b == ' '))
}

func frenchLayout(s string, i int, g *digitGroups) bool {
	for j := 0; j < 5; j++ {
		if g.len[j] != 2 || (j > 0 && g.sep[j] != g.sep[1]) {
			return false
		}
	}
	return s[i] == '0' && (g.n == 5 || g.sep[5] != g.sep[1])
}

func minGroup(g *digitGroups, k int) int8 {
	m := int8(127)
	for _, l := range g.len[:k] {
		m = min(m, l)
	}
	return m
}

// phoneContext reports whether a phone word appears in the 24 bytes
// before i.
func phoneContext(s string, i int) bool {
	var buf [24]byte
	w := buf[:0]
	for _, b := range []byte(s[max(0, i-24):i]) {
		w = append(w, lower(b))
	}
	for _, p := range phoneWords {
		for k := 0; k+len(p) <= len(w); {
			j := bytes.Index(w[k:], p)
			if j < 0 {
				break
			}
			if k+j == 0 || !isAlpha(w[k+j-1]) {
				return true // at the start of a word: "tel", not "Bestellnummer"
			}
			k += j + 1
		}
	}
	return false
}
