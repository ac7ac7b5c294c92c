package screen

import "strings"

// digitGroups is a number written in groups: "+1 (555) 123-4567",
// "4111 1111 1111 1111", "123-45-6789".
type digitGroups struct {
	plus  bool     // starts with '+'
	n     int      // groups
	len   [12]int8 // digits per group
	end   [12]int  // end offset of each group
	sep   [12]byte // the separator before each group (0 for the first)
	paren bool     // some separator was a parenthesis
}

// readGroups reads digit groups from s[i:], separated by at most two of
// " -.()/".
func readGroups(s string, i int, g *digitGroups) {
	*g = digitGroups{}
	if s[i] == '+' {
		g.plus = true
		i++
	}
	for g.n < len(g.len) {
		var sep byte
		for k := 0; k < 2 && i < len(s) && strings.IndexByte(" -.()/", s[i]) >= 0; k++ {
			g.paren = g.paren || s[i] == '(' || s[i] == ')'
			if sep == 0 || sep == '(' || sep == ')' {
				sep = s[i]
			}
			i++
		}
		j := runOf(s, i, cDigit)
		if j == i || j-i > 19 {
			return
		}
		g.len[g.n], g.end[g.n], g.sep[g.n] = int8(j-i), j, sep
		g.n++
		i = j
	}
}

// digits returns the digits in the first k groups.
func (g *digitGroups) digits(k int) int {
	n := 0
	for _, l := range g.len[:k] {
		n += int(l)
	}
	return n
}

// findNumbers finds card numbers, US social security numbers and phone
// numbers, reading each run of digit groups once.
func findNumbers(c *ctx, s string) {
	var g digitGroups
	for i := 0; i < len(s); i++ {
		if i = nextNumber(s, i); i == len(s) {
			return
		}
		b := s[i]
		if !isDigit(b) && b != '+' && b != '(' {
			continue
		}
		if i > 0 && (isAlnum(s[i-1]) || strings.IndexByte("+-./_,:#", s[i-1]) >= 0) {
			i = runOf(s, i, cDigit)
			continue
		}
		readGroups(s, i, &g)
		if g.n == 0 {
			continue
		}
		end := c.classifyNumber(s, i, &g)
		i = max(i, end-1)
	}
}

// classifyNumber adds the span the groups at s[i:] form, if any, and
// returns where to continue.
func (c *ctx) classifyNumber(s string, i int, g *digitGroups) int {
	if k := cardGroups(s, i, g); k > 0 {
		c.add(rCreditCard, i, g.end[k-1])
		return g.end[k-1]
	}
	if ssn(s, i, g) {
		c.add(rSSN, i, g.end[2])
		return g.end[2]
	}
	if k := phoneGroups(s, i, g); k > 0 {
		c.add(rPhone, i, g.end[k-1])
		return g.end[k-1]
	}
	return g.end[g.n-1]
}

// followedByNumber reports whether a digit group continues at s[j:].
func followedByNumber(s string, j int) bool {
	if j < len(s) && (isAlnum(s[j]) || s[j] == '_') {
		return true
	}
	return j+1 < len(s) && strings.IndexByte("-./,", s[j]) >= 0 && isDigit(s[j+1])
}

// cardGroups returns how many groups form a valid card number (13-19
// digits, Luhn, a known issuer prefix), or 0.
func cardGroups(s string, i int, g *digitGroups) int {
	if g.plus || g.paren {
		return 0
	}
	for k := g.n; k >= 1; k-- {
		d := g.digits(k)
		if d < 13 || d > 19 || (k > 1 && !cardLayout(g, k)) || followedByNumber(s, g.end[k-1]) && k == g.n {
			continue
		}
		var buf [19]byte
		num := collectDigits(s[i:g.end[k-1]], buf[:0])
		if luhn(num) && issuer(num) {
			return k
		}
	}
	return 0
}

// cardLayout: groups of 4 to 6 digits joined by one kind of single space
// or dash, the last group 1 to 6 digits.
func cardLayout(g *digitGroups, k int) bool {
	sep := g.sep[1]
	if sep != ' ' && sep != '-' {
		return false
	}
	for j := 0; j < k; j++ {
		if (j > 0 && g.sep[j] != sep) || (j < k-1 && (g.len[j] < 4 || g.len[j] > 6)) {
			return false
		}
	}
	return true
}

func collectDigits(s string, dst []byte) []byte {
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			dst = append(dst, s[i])
		}
	}
	return dst
}

// luhn reports whether the digits pass the Luhn check.
func luhn(d []byte) bool {
	sum := 0
	for i := range d {
		n := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

// issuer reports whether the number starts with a card issuer's prefix
// (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro).
func issuer(d []byte) bool {
	p2 := int(d[0]-'0')*10 + int(d[1]-'0')
	p4 := p2*100 + int(d[2]-'0')*10 + int(d[3]-'0')
	switch {
	case d[0] == '4':
		return true
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		return true
	case p2 == 34 || p2 == 37:
		return len(d) == 15
	case p4 == 6011, p2 == 65, p4 >= 6440 && p4 <= 6499, p2 == 62:
		return true
	case p4 >= 3528 && p4 <= 3589, p2 == 36, p2 == 38, p4 >= 3000 && p4 <= 3059:
		return true
	case p2 == 50, p2 >= 56 && p2 <= 58, p2 == 67:
		return true
	}
	return false
}

// ssn: AAA-GG-SSSS (dashes or spaces) with a valid area (not 000, 666 or
// 9xx), group (not 00) and serial (not 0000).
func ssn(s string, i int, g *digitGroups) bool {
	if g.plus || g.paren || g.n < 3 || g.len[0] != 3 || g.len[1] != 2 || g.len[2] != 4 {
		return false
	}
	if g.sep[1] != g.sep[2] || (g.sep[1] != '-' && g.sep[1] != ' ') || followedByNumber(s, g.end[2]) {
		return false
	}
	area, grp, ser := s[i:i+3], s[i+4:i+6], s[i+7:i+11]
	return area != "000" && area != "666" && area[0] != '9' && grp != "00" && ser != "0000"
}
