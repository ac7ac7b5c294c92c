package screen

// ibanLen is the IBAN length per country (ISO 13616 registry, common ones).
var ibanLen = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
	"BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
	"ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
	"HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
	"LB": 28, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
	"MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
	"RO": 24, "RS": 22, "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26,
	"UA": 29, "VG": 24, "XK": 20,
}

// findIBANs finds IBANs, compact or in groups of four, with a valid
// length for their country and a valid mod-97 checksum.
func findIBANs(c *ctx, s string) {
	for i := 0; i+15 <= len(s); i++ {
		if !isDigit(s[i+3]) {
			i += ibanSkip(s[i+3])
			continue
		}
		if class[s[i]]&cUpper == 0 || class[s[i+1]]&cUpper == 0 || !isDigit(s[i+2]) {
			continue
		}
		if i > 0 && isAlnum(s[i-1]) {
			continue
		}
		want, ok := ibanLen[s[i:i+2]]
		if !ok {
			continue
		}
		if end, ok := ibanAt(s, i, want); ok {
			c.add(rIBAN, i, end)
			i = end - 1
		}
	}
}

// ibanSkip returns how many starts after i are ruled out as well when
// the fourth byte of the one at i, c, is no digit: the one at i+1 needs
// c to be a digit; those at i+2 and i+3 need it to be an upper-case
// letter.
func ibanSkip(c byte) int {
	if class[c]&cUpper != 0 {
		return 1
	}
	return 3
}

// ibanAt reads want alphanumerics from s[i:], allowing single spaces
// between groups of four, and checks the checksum.
func ibanAt(s string, i, want int) (int, bool) {
	var buf [34]byte
	n, j := 0, i
	for j < len(s) && n < want {
		switch b := s[j]; {
		case class[b]&(cDigit|cUpper) != 0:
			buf[n] = b
			n++
		case b == ' ' && n%4 == 0 && n > 0 && j+1 < len(s) && isAlnum(s[j+1]):
		default:
			return 0, false
		}
		j++
	}
	if n != want || (j < len(s) && isAlnum(s[j])) {
		return 0, false
	}
	return j, mod97(buf[:n]) == 1
}

// mod97 computes the IBAN checksum: the country code and check digits
// moved to the end, letters as 10..35, the number modulo 97.
func mod97(iban []byte) int {
	r := 0
	for k := 0; k < len(iban); k++ {
		b := iban[(k+4)%len(iban)]
		if b >= 'A' {
			r = (r*100 + int(b-'A'+10)) % 97
		} else {
			r = (r*10 + int(b-'0')) % 97
		}
	}
	return r
}
