package screen

import (
	"regexp"
	"strconv"

	"github.com/moatmesh/moat/policy"
)

// customRule is a detector a policy declares (policy.Detector), compiled.
type customRule struct {
	def    ruleDef
	re     *regexp.Regexp          // the pattern, anchored at the start: ^(?:pattern)
	prefix string                  // the literal every match starts with, if any
	first  *[256]bool              // the bytes a match may start with
	lead   [][256]bool             // the bytes each of its first bytes may be, as far as fixed
	check  func(match string) bool // nil: every match counts
}

// compileCustom compiles a policy's detectors. Their names must not be
// built-in rule ids nor repeat; policy validation refuses both earlier.
func compileCustom(ds []policy.Detector) ([]*customRule, error) {
	if len(ds) > policy.MaxDetectors {
		return nil, &ConfigError{Msg: "more than " + strconv.Itoa(policy.MaxDetectors) + " detectors"}
	}
	out := make([]*customRule, 0, len(ds))
	for _, d := range ds {
		if _, builtin := ruleByID(d.Name); builtin || d.Name == "" {
			return nil, &ConfigError{Msg: "detector name " + quote(d.Name) + " is empty or a built-in rule"}
		}
		for _, o := range out {
			if o.def.id == d.Name {
				return nil, &ConfigError{Msg: "detector " + quote(d.Name) + " is declared twice"}
			}
		}
		re, longest, err := policy.CompileDetector(d.Pattern)
		if err != nil {
			return nil, &ConfigError{Msg: "detector " + quote(d.Name) + ": " + err.Error()}
		}
		cat, ok := map[string]Category{"secrets": CatSecret, "pii": CatPII}[d.Category]
		if !ok {
			return nil, &ConfigError{Msg: "detector " + quote(d.Name) + ": unknown category " + quote(d.Category)}
		}
		check, ok := validators[d.Validator]
		if !ok {
			return nil, &ConfigError{Msg: "detector " + quote(d.Name) + ": unknown validator " + quote(d.Validator)}
		}
		anch, err := regexp.Compile(`^(?:` + re.String() + `)`)
		if err != nil {
			return nil, &ConfigError{Msg: "detector " + quote(d.Name) + ": " + err.Error()}
		}
		// The stream must see the whole match and the byte after it.
		out = append(out, &customRule{def: ruleDef{d.Name, cat, longest + 1, tailStop}, re: anch, prefix: literalPrefix(re), first: firstBytes(d.Pattern), lead: leadSets(d.Pattern), check: check})
	}
	return out, nil
}

// literalPrefix returns the literal every match of re starts with.
func literalPrefix(re *regexp.Regexp) string {
	p, _ := re.LiteralPrefix()
	return p
}

var validators = map[string]func(string) bool{
	"":      nil,
	"luhn":  func(m string) bool { d := digitsOf(m); return len(d) >= 2 && luhn(d) },
	"mod97": func(m string) bool { return mod97Plain(m) },
	"mod11": func(m string) bool { return mod11(digitsOf(m)) },
}

// wordByte reports whether s[i] is a letter, digit or '_' (false outside s).
func wordByte(s string, i int) bool {
	return i >= 0 && i < len(s) && (isAlnum(s[i]) || s[i] == '_')
}

// digitsOf returns the ASCII digits of s.
func digitsOf(s string) []byte {
	return collectDigits(s, make([]byte, 0, len(s)))
}

// mod11 reports whether the last digit checks the others with weights 2,
// 3, … from the right (11 - sum mod 11; 11 means 0, 10 never checks), as
// UK NHS numbers.
func mod11(d []byte) bool {
	if len(d) < 2 {
		return false
	}
	sum := 0
	for i := len(d) - 2; i >= 0; i-- {
		sum += int(d[i]-'0') * (len(d) - i)
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	return check != 10 && check == int(d[len(d)-1]-'0')
}

// mod97Plain reports whether the letters and digits of s, letters as 10
// to 35, form a number that is 1 modulo 97 (ISO 7064 MOD 97-10).
func mod97Plain(s string) bool {
	r, n := 0, 0
	for i := 0; i < len(s); i++ {
		switch b := s[i] | 0x20; {
		case isDigit(s[i]):
			r, n = (r*10+int(s[i]-'0'))%97, n+1
		case b >= 'a' && b <= 'z':
			r, n = (r*100+int(b-'a'+10))%97, n+1
		}
	}
	return n >= 2 && r == 1
}
