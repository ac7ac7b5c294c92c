package screen

// Health and organisation identifiers: US National Provider Identifiers,
// US DEA registration numbers and UK NHS numbers. NPI and NHS numbers are
// ten digits like many others (phone numbers, order numbers), so they
// count only with their name shortly before them; a DEA number's shape
// (two letters, seven digits, a checksum) is its own context.

// healthContext is how far before a number its name may stand.
const healthContext = 40

// findHealthIDs reads each run of digits once.
func findHealthIDs(c *ctx, s string) {
	for i := 0; i < len(s); {
		if i = nextDigit(s, i); i == len(s) {
			return
		}
		j := runOf(s, i, cDigit)
		switch n := j - i; {
		case n == 7 && i >= 2:
			if dea(s, i-2, j) {
				c.add(rDEA, i-2, j)
			}
		case n == 8 && i >= 1 && s[i] == '9': // the second character of a DEA number may be 9
			if dea(s, i-1, j) {
				c.add(rDEA, i-1, j)
			}
		case n == 10 && !wordByte(s, i-1) && !wordByte(s, j):
			if s[i] == '1' || s[i] == '2' {
				if npi(s[i:j]) && named(s, i, "npi", "provider") {
					c.add(rNPI, i, j)
					break
				}
			}
			if mod11([]byte(s[i:j])) && named(s, i, "nhs") {
				c.add(rNHS, i, j)
			}
		case n == 3 && !wordByte(s, i-1):
			if end, ok := nhsGrouped(s, i); ok && named(s, i, "nhs") {
				c.add(rNHS, i, end)
				j = end
			}
		}
		i = j
	}
}

// npi reports whether ten digits are a valid NPI: the Luhn check over
// the digits prefixed by 80840 (the US health industry number).
func npi(d string) bool {
	var b [15]byte
	copy(b[:], "80840")
	copy(b[5:], d)
	return luhn(b[:])
}

// dea reports whether s[i:j] is a DEA number: a registrant type letter, a
// letter (the registrant's last name) or '9', and seven digits whose
// last is (d1+d3+d5 + 2*(d2+d4+d6)) mod 10.
func dea(s string, i, j int) bool {
	if wordByte(s, i-1) || wordByte(s, j) || !isUpper(s[i]) || !(isUpper(s[i+1]) || s[i+1] == '9') {
		return false
	}
	switch s[i] {
	case 'I', 'N', 'O', 'Q', 'V', 'W', 'Y', 'Z':
		return false
	}
	d := s[i+2 : j]
	sum := int(d[0]-'0') + int(d[2]-'0') + int(d[4]-'0') + 2*(int(d[1]-'0')+int(d[3]-'0')+int(d[5]-'0'))
	return sum%10 == int(d[6]-'0')
}

// nhsGrouped reads "ddd ddd dddd" (spaces or dashes) at s[i:] and checks
// it; it returns the end.
func nhsGrouped(s string, i int) (int, bool) {
	if i+12 > len(s) {
		return 0, false
	}
	sep := s[i+3]
	if sep != ' ' && sep != '-' || s[i+7] != sep || wordByte(s, i+12) {
		return 0, false
	}
	var d [10]byte
	n := 0
	for k := i; k < i+12; k++ {
		if k == i+3 || k == i+7 {
			continue
		}
		if !isDigit(s[k]) {
			return 0, false
		}
		d[n] = s[k]
		n++
	}
	return i + 12, mod11(d[:])
}

// named reports whether one of the names (lower case) stands as a word
// within healthContext bytes before s[i:].
func named(s string, i int, names ...string) bool {
	w := s[max(0, i-healthContext):i]
	for _, name := range names {
		for k := 0; k+len(name) <= len(w); k++ {
			if equalFoldASCII(w[k:k+len(name)], name) && !wordByte(w, k-1) && !isAlpha(byteAt(w, k+len(name))) {
				return true
			}
		}
	}
	return false
}

func isUpper(c byte) bool { return class[c]&cUpper != 0 }

func byteAt(s string, i int) byte {
	if i < len(s) {
		return s[i]
	}
	return 0
}

// equalFoldASCII compares s with lower-case ASCII name, ignoring case.
func equalFoldASCII(s, name string) bool {
	for k := 0; k < len(name); k++ {
		if s[k]|0x20 != name[k] {
			return false
		}
	}
	return true
}
