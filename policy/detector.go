package policy

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"unicode/utf8"

	"github.com/tailscale/hujson"
)

// Detector is a screening rule a policy declares for identifiers of its
// own, such as medical record numbers or employee IDs. Its Name is the
// rule id in markers, refusals and audit records; its Category decides
// which of the guard's actions apply to it.
type Detector struct {
	Name string `json:"name"`
	// Pattern is a Go regular expression (RE2 syntax, linear-time) of
	// bounded length; see CompileDetector for the limits. A match counts
	// only where neither the byte before nor the byte after it is a
	// letter, digit or '_'.
	Pattern string `json:"pattern"`
	// Validator, if set, checks the match: "luhn" (its digits), "mod97"
	// (its letters and digits, ISO 7064 MOD 97-10) or "mod11" (its
	// digits, the last one a check digit, weights 2, 3, … from the right,
	// as UK NHS numbers). "" accepts every match.
	Validator string `json:"validator,omitempty"`
	Category  string `json:"category"` // "secrets" or "pii"
}

// Limits on detectors, so that a policy cannot make screening slow or the
// streaming hold-back large.
const (
	MaxDetectors       = 16   // per grant
	MaxPatternLen      = 256  // bytes of a pattern
	MaxPatternInsts    = 1000 // instructions of the compiled pattern
	MaxDetectorMatch   = 128  // bytes the longest match may have
	MinDetectorMatch   = 4    // bytes the shortest match must have
	maxDetectorNameLen = 40
)

// DetectorValidators are the values of Detector.Validator.
var DetectorValidators = []string{"luhn", "mod97", "mod11"}

// ReservedRuleIDs are the ids of the guard's built-in screening rules,
// which a detector may not take as its name. (node/screen's tests keep
// this list equal to its rules.)
var ReservedRuleIDs = []string{
	"private-key", "aws-access-key", "github-token", "slack-token", "stripe-key", "gcp-api-key",
	"openai-key", "anthropic-key", "huggingface-token", "gitlab-token", "age-secret-key",
	"notion-token", "sourcegraph-token", "tailscale-key", "vercel-token", "groq-key", "nuget-key",
	"vault-token", "authress-key", "api-token", "kubernetes-secret", "azure-key", "jwt", "webhook-url",
	"auth-header", "connection-string", "exfil-link", "iban", "credit-card", "us-ssn",
	"us-npi", "us-dea", "uk-nhs-number", "email", "ip-address", "phone",
	"injection-override", "injection-roleplay", "injection-role-tag", "encoded-instructions",
	"hidden-text", "generic-high-entropy",
}

// CompileDetector compiles a detector's pattern and returns it with the
// length in bytes of its longest match. It refuses patterns longer than
// MaxPatternLen, anchors (^, $, \A, \z: a match is bounded by non-word
// bytes instead), repetition without an upper bound (*, +, {n,}), a
// longest match over MaxDetectorMatch or a shortest under
// MinDetectorMatch, and programs over MaxPatternInsts instructions.
func CompileDetector(pattern string) (*regexp.Regexp, int, error) {
	if len(pattern) > MaxPatternLen {
		return nil, 0, fmt.Errorf("pattern is %d bytes; at most %d", len(pattern), MaxPatternLen)
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, 0, fmt.Errorf("%v", err)
	}
	if err := boundedRegexp(re); err != nil {
		return nil, 0, err
	}
	hi, lo := matchLen(re)
	if hi > MaxDetectorMatch {
		return nil, 0, fmt.Errorf("pattern matches up to %d bytes; at most %d", hi, MaxDetectorMatch)
	}
	if lo < MinDetectorMatch {
		return nil, 0, fmt.Errorf("pattern matches as few as %d bytes; at least %d, so that it cannot fire on every short word", lo, MinDetectorMatch)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil, 0, fmt.Errorf("%v", err)
	}
	if len(prog.Inst) > MaxPatternInsts {
		return nil, 0, fmt.Errorf("pattern compiles to %d instructions; at most %d (lower the repetition counts)", len(prog.Inst), MaxPatternInsts)
	}
	return regexp.MustCompile(pattern), hi, nil
}

// boundedRegexp refuses anchors and unbounded repetition.
func boundedRegexp(re *syntax.Regexp) error {
	switch re.Op {
	case syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText:
		return fmt.Errorf("pattern has an anchor (^, $, \\A or \\z); leave it out: a match never touches a letter, digit or '_' on either side")
	case syntax.OpStar, syntax.OpPlus:
		return fmt.Errorf("pattern has unbounded repetition %q; give an upper bound such as {1,32}", re.String())
	case syntax.OpRepeat:
		if re.Max < 0 {
			return fmt.Errorf("pattern has unbounded repetition %q; give an upper bound such as {%d,%d}", re.String(), re.Min, max(re.Min, 32))
		}
	}
	for _, sub := range re.Sub {
		if err := boundedRegexp(sub); err != nil {
			return err
		}
	}
	return nil
}

// matchLen returns the most and the fewest bytes re matches (capped at a
// large number, so nesting cannot overflow).
func matchLen(re *syntax.Regexp) (hi, lo int) {
	const cap = 1 << 20
	switch re.Op {
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			hi, lo = hi+utf8.RuneLen(r), lo+utf8.RuneLen(r)
		}
		if re.Flags&syntax.FoldCase != 0 {
			hi = 4 * len(re.Rune) // a folded rune may be longer (K, ſ)
		}
	case syntax.OpCharClass:
		if len(re.Rune) == 0 {
			return 0, cap // matches nothing
		}
		hi, lo = utf8.RuneLen(min(re.Rune[len(re.Rune)-1], utf8.MaxRune)), utf8.RuneLen(re.Rune[0])
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		hi, lo = 4, 1
	case syntax.OpCapture, syntax.OpQuest:
		hi, lo = matchLen(re.Sub[0])
		if re.Op == syntax.OpQuest {
			lo = 0
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			h, l := matchLen(sub)
			hi, lo = min(hi+h, cap), min(lo+l, cap)
		}
	case syntax.OpAlternate:
		lo = cap
		for _, sub := range re.Sub {
			h, l := matchLen(sub)
			hi, lo = max(hi, h), min(lo, l)
		}
	case syntax.OpRepeat:
		h, l := matchLen(re.Sub[0])
		hi, lo = min(h*re.Max, cap), min(l*re.Min, cap)
	case syntax.OpStar, syntax.OpPlus:
		return cap, 0
	}
	return hi, lo
}

// detectors decodes a guard's list of detectors.
func (d *decoder) detectors(v *hujson.Value, what string) []Detector {
	var out []Detector
	d.array(v, what, func(i int, el *hujson.Value) {
		w := fmt.Sprintf("%s[%d]", what, i)
		if i == MaxDetectors {
			d.errorf(el.StartOffset, "%s: at most %d detectors per grant", w, MaxDetectors)
		}
		det, ok := d.detector(el, w)
		if !ok {
			return
		}
		if slices.ContainsFunc(out, func(o Detector) bool { return o.Name == det.Name }) {
			d.errorf(el.StartOffset, "%s: name %q is used twice; give each detector its own", w, det.Name)
			return
		}
		out = append(out, det)
	})
	return out
}

func (d *decoder) detector(v *hujson.Value, what string) (Detector, bool) {
	var det Detector
	nameAt, patAt := v.StartOffset, v.StartOffset
	d.fields(v, what,
		field{"name", func(v *hujson.Value) { det.Name, _ = d.str(v, what+".name"); nameAt = v.StartOffset }},
		field{"pattern", func(v *hujson.Value) { det.Pattern, _ = d.str(v, what+".pattern"); patAt = v.StartOffset }},
		field{"validator", func(v *hujson.Value) { det.Validator, _ = d.enum(v, what+".validator", DetectorValidators...) }},
		field{"category", func(v *hujson.Value) { det.Category, _ = d.enum(v, what+".category", "secrets", "pii") }},
	)
	n := len(d.errs)
	switch {
	case det.Name == "" && nameAt == v.StartOffset:
		d.errorf(v.StartOffset, "%s: name is missing", what)
	case det.Name == "":
	case !detectorName(det.Name):
		d.errorf(nameAt, "%s.name: %q: use 2 to %d lower-case letters, digits and '-', starting with a letter", what, det.Name, maxDetectorNameLen)
	case slices.Contains(ReservedRuleIDs, det.Name):
		d.errorf(nameAt, "%s.name: %q is a built-in rule; choose another", what, det.Name)
	}
	if det.Category == "" {
		d.errorf(v.StartOffset, `%s: category is missing; use "secrets" or "pii"`, what)
	}
	if det.Pattern == "" && patAt == v.StartOffset {
		d.errorf(v.StartOffset, "%s: pattern is missing", what)
	} else if _, _, err := CompileDetector(det.Pattern); err != nil && det.Pattern != "" {
		d.errorf(patAt, "%s: %v", what, err)
	}
	return det, len(d.errs) == n && det.Name != "" && det.Pattern != ""
}

// detectorName reports whether s is a valid detector name.
func detectorName(s string) bool {
	if len(s) < 2 || len(s) > maxDetectorNameLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
