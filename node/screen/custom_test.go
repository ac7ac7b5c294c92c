package screen

import (
	"maps"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/moatmesh/moat/policy"
)

// sixteen are policy.MaxDetectors detectors of the kinds organisations
// declare: literal prefixes, case-folded ones and patterns that start
// with a class.
var sixteen = []policy.Detector{
	{Name: "mrn", Pattern: `MRN-\d{8}`, Category: "pii"},
	{Name: "employee", Pattern: `E[0-9]{6}`, Validator: "luhn", Category: "pii"},
	{Name: "account", Pattern: `ACC[0-9A-Z]{6,20}`, Validator: "mod97", Category: "pii"},
	{Name: "patient", Pattern: `PAT-[A-Z]{2}\d{6}`, Category: "pii"},
	{Name: "case", Pattern: `(?i)case-\d{5,8}`, Category: "pii"},
	{Name: "tax-id", Pattern: `\d{3}-\d{2}-\d{4}`, Category: "pii"},
	{Name: "passport", Pattern: `[A-Z]{2}\d{6}[A-Z]`, Category: "pii"},
	{Name: "invoice", Pattern: `INV\d{7}`, Category: "pii"},
	{Name: "customer", Pattern: `CUST_[a-z0-9]{12}`, Category: "pii"},
	{Name: "project", Pattern: `PRJ-[0-9]{4}`, Category: "pii"},
	{Name: "ticket", Pattern: `TKT#\d{6}`, Category: "pii"},
	{Name: "card-ref", Pattern: `[0-9]{4}-[0-9]{4}-[0-9]{4}`, Category: "pii"},
	{Name: "licence", Pattern: `LIC-[A-F0-9]{16}`, Category: "secrets"},
	{Name: "badge", Pattern: `(?i)badge[0-9]{5}`, Category: "pii"},
	{Name: "server", Pattern: `SRV-[a-z]{3}-\d{3}`, Category: "pii"},
	{Name: "hr", Pattern: `HR\d{8}`, Category: "pii"},
}

func sixteenActions() RuleActions {
	ra := RuleActions{}
	for _, d := range sixteen {
		ra[d.Name] = ActionRedact
	}
	return ra
}

// BenchmarkScan4KSixteenDetectors: the cost of sixteen policy detectors
// alone on a 4 KiB prompt with one match.
func BenchmarkScan4KSixteenDetectors(b *testing.B) {
	scr, err := Compile(Config{Input: sixteenActions(), Custom: sixteen})
	if err != nil {
		b.Fatal(err)
	}
	text := inputEvery() + " MRN-12345678"
	b.SetBytes(int64(len(text)))
	p99(b, func() { scr.In.Check(text) })
}

// findEach is the reference: each detector searched alone over the text,
// as before they were combined (after a match refused at its boundaries
// or by its validator, the search goes on one character later).
func findEach(cr *customRule, unanchored *regexp.Regexp, s string) [][2]int {
	var out [][2]int
	for i := 0; i < len(s); {
		loc := unanchored.FindStringIndex(s[i:])
		if loc == nil {
			return out
		}
		start, end := i+loc[0], i+loc[1]
		if end > start && !wordByte(s, start-1) && !wordByte(s, end) && (cr.check == nil || cr.check(s[start:end])) {
			out = append(out, [2]int{start, end})
			i = end
			continue
		}
		_, n := utf8.DecodeRuneInString(s[start:])
		i = start + max(n, 1)
	}
	return out
}

// TestCustomCombined: the combined scan finds what each detector finds
// searched alone, on random texts made of matches, near misses and
// separators.
func TestCustomCombined(t *testing.T) {
	rules, err := compileCustom(sixteen)
	if err != nil {
		t.Fatal(err)
	}
	on := [maxRules]bool{}
	for i := range rules {
		on[numRules+ruleID(i)] = true
	}
	det := customDetector(rules)
	pieces := []string{"MRN-12345678", "E123455", "E1234567", "ACC12AB34CD", "PAT-AB123456", "CaSe-123456", "123-45-6789",
		"AB123456C", "INV1234567", "CUST_abcdef123456", "PRJ-2024", "TKT#123456", "1234-5678-9012", "LIC-0123456789ABCDEF",
		"BADGE12345", "SRV-abc-123", "HR12345678", " ", "-", "_", "x", "7", "é", "\u00a0", ".", "#", "ſ", "K"}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 3000; n++ {
		var b strings.Builder
		for k := rng.IntN(12); k >= 0; k-- {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		s := b.String()
		c := &ctx{on: &on}
		det.find(c, s)
		got := map[[3]int]bool{}
		for _, sp := range c.spans {
			got[[3]int{int(sp.rule), sp.start, sp.end}] = true
		}
		want := map[[3]int]bool{}
		for i, cr := range rules {
			for _, m := range findEach(cr, regexp.MustCompile(sixteen[i].Pattern), s) {
				want[[3]int{int(numRules) + i, m[0], m[1]}] = true
			}
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%q: combined %v, each alone %v", s, got, want)
		}
	}
}
