package screen

import (
	"math/bits"
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/moatmesh/moat/policy"
)

// customDetector returns one detector for all of a policy's detectors,
// rules numRules, numRules+1, ...: the detectors with a literal prefix
// are searched for it (as Go's regexp does), the others in one pass over
// the text that finds the places where one of them may start (a byte it
// can start with, and no letter, digit or '_' before it); only there is a
// detector tried, anchored. Sixteen detectors cost about one pass,
// whatever their patterns. The matches are those of searching with each
// detector alone: at each place, the detector's preferred match, unless it
// overlaps the detector's previous match, taken when no letter, digit or
// '_' follows it and it passes the detector's validator.
func customDetector(rules []*customRule) detector {
	// A uint32 bit per rule: compileCustom refuses more than
	// policy.MaxDetectors, and this fails to compile if that passes 32.
	const _ = uint(32 - policy.MaxDetectors)

	var first [256]uint32 // bit k: rules[k] may start with the byte, for rules without a prefix
	var byPrefix []int
	scan := false // some rule has no prefix
	ids := make([]ruleID, len(rules))
	for k, cr := range rules {
		ids[k] = numRules + ruleID(k)
		if len(cr.prefix) >= 2 {
			byPrefix = append(byPrefix, k)
			continue
		}
		scan = true
		for b, ok := range cr.first {
			if ok {
				first[b] |= 1 << k
			}
		}
	}
	find := func(c *ctx, s string) {
		for _, k := range byPrefix {
			if c.on[ids[k]] {
				rules[k].findPrefixed(c, s, ids[k])
			}
		}
		if scan {
			scanFirst(c, s, &first, rules, ids)
		}
	}
	return detector{rules: ids, find: find}
}

// findPrefixed adds the matches of a rule with a literal prefix.
func (cr *customRule) findPrefixed(c *ctx, s string, r ruleID) {
	for i := 0; ; {
		k := strings.Index(s[i:], cr.prefix)
		if k < 0 {
			return
		}
		q := i + k
		i = q + 1
		if wordByte(s, q-1) {
			continue
		}
		if end := cr.matchAt(s, q); end > 0 {
			c.addTail(r, q, end, tailStop, nil)
			i = end
		}
	}
}

// scanFirst adds the matches of the rules in first, in one pass over s.
func scanFirst(c *ctx, s string, first *[256]uint32, rules []*customRule, ids []ruleID) {
	var next [32]int // per rule: where its previous match ended
	for q := 0; q < len(s); q++ {
		m := first[s[q]]
		if m == 0 || wordByte(s, q-1) {
			continue
		}
		for ; m != 0; m &= m - 1 {
			k := bits.TrailingZeros32(m)
			if r := ids[k]; c.on[r] && q >= next[k] {
				if end := rules[k].matchAt(s, q); end > 0 {
					c.addTail(r, q, end, tailStop, nil)
					next[k] = end
				}
			}
		}
	}
}

// matchAt returns the end of the rule's match at s[q:] if it is one to
// take (no letter, digit or '_' after it, the validator passes), else 0.
func (cr *customRule) matchAt(s string, q int) int {
	for j := range cr.lead {
		if q+j >= len(s) || !cr.lead[j][s[q+j]] {
			return 0
		}
	}
	loc := cr.re.FindStringIndex(s[q:min(len(s), q+cr.def.decide)])
	if loc == nil || loc[1] == 0 {
		return 0
	}
	end := q + loc[1]
	if wordByte(s, end) || cr.check != nil && !cr.check(s[q:end]) {
		return 0
	}
	return end
}

// firstBytes returns the bytes a match of pattern may start with. It errs
// on the side of more bytes: any byte when the pattern does not parse.
func firstBytes(pattern string) *[256]bool {
	var set [256]bool
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil || firstOf(re.Simplify(), &set) {
		for b := range set {
			set[b] = true
		}
	}
	return &set
}

// firstOf adds to set the bytes a match of re may start with and reports
// whether re may match the empty string.
func firstOf(re *syntax.Regexp, set *[256]bool) bool {
	switch re.Op {
	case syntax.OpNoMatch:
		return false
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return true
		}
		addRune(set, re.Rune[0], re.Flags&syntax.FoldCase != 0)
		return false
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			addRange(set, re.Rune[i], re.Rune[i+1])
		}
		return false
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		addRange(set, 0, utf8.MaxRune)
		return false
	case syntax.OpCapture, syntax.OpPlus:
		return firstOf(re.Sub[0], set)
	case syntax.OpStar, syntax.OpQuest:
		firstOf(re.Sub[0], set)
		return true
	case syntax.OpRepeat:
		return firstOf(re.Sub[0], set) || re.Min == 0
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !firstOf(sub, set) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		empty := false
		for _, sub := range re.Sub {
			empty = firstOf(sub, set) || empty
		}
		return empty
	}
	return true // empty-width: ^ $ \b \B and the empty match
}

// addRune adds the first byte of r, and of the runes it folds to.
func addRune(set *[256]bool, r rune, fold bool) {
	addRange(set, r, r)
	for f := unicode.SimpleFold(r); fold && f != r; f = unicode.SimpleFold(f) {
		addRange(set, f, f)
	}
}

// addRange adds the first bytes of the runes lo to hi: exact for ASCII,
// every non-ASCII byte otherwise (Go's regexp reads invalid UTF-8 as
// U+FFFD, so a class beyond ASCII may start at any such byte).
func addRange(set *[256]bool, lo, hi rune) {
	for r := lo; r <= min(hi, utf8.RuneSelf-1); r++ {
		set[r] = true
	}
	if hi >= utf8.RuneSelf {
		for b := utf8.RuneSelf; b < 256; b++ {
			set[b] = true
		}
	}
}

// maxLead bounds the leading bytes checked before the pattern runs.
const maxLead = 8

// leadSets returns, for the first bytes of every match of pattern, the
// bytes each may be, as far as the pattern fixes them one byte at a time:
// ASCII literals and classes, and their repetitions up to the least
// count. MRN-\d{8} gives M, R, N, -, and 0-9 four times.
func leadSets(pattern string) [][256]bool {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	var out [][256]bool
	appendLead(re.Simplify(), &out)
	return out
}

// appendLead appends the byte sets of re's first bytes to out (up to
// maxLead) and reports whether what follows re starts at a fixed place.
func appendLead(re *syntax.Regexp, out *[][256]bool) bool {
	if len(*out) >= maxLead {
		return false
	}
	switch re.Op {
	case syntax.OpCapture:
		return appendLead(re.Sub[0], out)
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			if !appendLead(sub, out) {
				return false
			}
		}
		return true
	case syntax.OpRepeat:
		for n := 0; n < re.Min; n++ {
			if !appendLead(re.Sub[0], out) {
				return false
			}
		}
		return re.Max == re.Min
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			var set [256]bool
			if r >= utf8.RuneSelf || !addASCII(&set, r, r, re.Flags&syntax.FoldCase != 0) || len(*out) >= maxLead {
				return false
			}
			*out = append(*out, set)
		}
		return true
	case syntax.OpCharClass:
		var set [256]bool
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if !addASCII(&set, re.Rune[i], re.Rune[i+1], false) {
				return false
			}
		}
		*out = append(*out, set)
		return true
	}
	return false
}

// addASCII adds the runes lo to hi (and their case folds) to set and
// reports whether they are all ASCII.
func addASCII(set *[256]bool, lo, hi rune, fold bool) bool {
	if hi >= utf8.RuneSelf {
		return false
	}
	for r := lo; r <= hi; r++ {
		set[r] = true
		for f := unicode.SimpleFold(r); fold && f != r; f = unicode.SimpleFold(f) {
			if f >= utf8.RuneSelf {
				return false // K and ſ fold to Kelvin and long s
			}
			set[f] = true
		}
	}
	return true
}
