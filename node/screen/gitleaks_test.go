package screen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
)

// The samples gitleaks v8.30.1 ships with its rules (testdata/gitleaks,
// extracted by node/screen/corpus/extract; MIT licence alongside). The
// "held" split is never looked at while tuning the detectors.
const gitleaksSamples = "testdata/gitleaks/samples.jsonl"

// Thresholds over all of gitleaks' samples, both splits, just under what
// is measured: prefix-shaped positives caught by specific rules 0.992
// (tune 0.992, held 0.993), all positives by any rule 0.993 (0.992,
// 0.995). Clean negatives flagged by specific rules: 0.004 (tune 0.000,
// held 0.015; goal 0.02). The last fixes came from gitleaks' rule
// definitions, not from held-out samples one by one: its gcp-api-key
// allowlist of keys published in Firebase's SDKs (publicGoogleKeys), and
// its token boundary (a token between a '.' and a file extension is part
// of a file name, see dotted). Since gitleaks' negatives are its rules'
// own examples, reading a rule reads its negatives: the held split is
// not blind to these two fixes. What is left held out is one AWS-family
// sample. Capping a Bedrock key at gitleaks' 269 bytes was tried and not
// kept: a Stream cannot hold back that much, so whole and chunked scans
// disagreed. AWS key ids held to base32 and 3 bits a byte (gitleaks'
// rule) lost secretlint's and moat's own AWS samples, so that was not
// kept either.
const (
	// minSpecificRecall: true positives of prefix-shaped rules caught by
	// moat's specific secret rules (everything but generic-high-entropy).
	minSpecificRecall = 0.985
	// minAllRecall: true positives of every rule caught by any secret rule.
	minAllRecall = 0.985
	// maxSpecificFalse: gitleaks' false positives flagged by a specific rule.
	maxSpecificFalse = 0.02
)

type gitleaksSample struct {
	Rule, Family, Kind, Split, Shape, Text string
	Flagged                                []string // for negatives: gitleaks rules that still flag it
}

func loadGitleaks(t testing.TB) []gitleaksSample {
	return loadJSONL[gitleaksSample](t, gitleaksSamples)
}

// loadJSONL reads one T per line of the file at path.
func loadJSONL[T any](t testing.TB, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		var s T
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// secretScanner flags every secret rule.
func secretScanner(t testing.TB) *Scanner { return categoryScanner(t, CatSecret) }

// categoryScanner flags every rule of the category.
func categoryScanner(t testing.TB, cat Category) *Scanner {
	ra := RuleActions{}
	for _, r := range Rules() {
		if r.Category == cat {
			ra[r.ID] = ActionFlag
		}
	}
	return mustScanner(t, ra)
}

// tally counts one family's samples in one split.
type tally struct {
	pos, specific, any       int // true positives: all, caught by a specific rule, caught at all
	prefixPos, prefixSpec    int // the same for prefix-shaped rules
	neg, negSpecific, negAny int // false positives: all, flagged by a specific / any rule
	clean, cleanSpecific     int // false positives no gitleaks rule flags: all, flagged by a specific rule
}

func (a *tally) add(b tally) {
	a.pos, a.specific, a.any = a.pos+b.pos, a.specific+b.specific, a.any+b.any
	a.prefixPos, a.prefixSpec = a.prefixPos+b.prefixPos, a.prefixSpec+b.prefixSpec
	a.neg, a.negSpecific, a.negAny = a.neg+b.neg, a.negSpecific+b.negSpecific, a.negAny+b.negAny
	a.clean, a.cleanSpecific = a.clean+b.clean, a.cleanSpecific+b.cleanSpecific
}

// ratio is n/d, and 0 when d is 0.
func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// scoreGitleaks tallies the samples per split and family.
func scoreGitleaks(sc *Scanner, samples []gitleaksSample, missed func(gitleaksSample, bool)) map[string]map[string]*tally {
	out := map[string]map[string]*tally{"tune": {}, "held": {}}
	for _, s := range samples {
		fs := sc.Scan(s.Text)
		spec := slices.ContainsFunc(fs, func(f Finding) bool { return f.Rule != ruleDefs[rGeneric].id })
		var x tally
		if s.Kind == "tp" {
			x.pos, x.specific, x.any = 1, b2i(spec), b2i(len(fs) > 0)
			if s.Shape == "prefix" {
				x.prefixPos, x.prefixSpec = 1, b2i(spec)
			}
			if missed != nil && (len(fs) == 0 || s.Shape == "prefix" && !spec) {
				missed(s, len(fs) > 0)
			}
		} else {
			x.neg, x.negSpecific, x.negAny = 1, b2i(spec), b2i(len(fs) > 0)
			if len(s.Flagged) == 0 {
				x.clean, x.cleanSpecific = 1, b2i(spec)
			}
			if missed != nil && spec {
				missed(s, true)
			}
		}
		t := out[s.Split][s.Family]
		if t == nil {
			t = &tally{}
			out[s.Split][s.Family] = t
		}
		t.add(x)
	}
	return out
}

// row formats one line of the report: recall of prefix-shaped positives
// by specific rules, of all positives by specific rules and by any rule;
// the share of negatives flagged by specific rules, by any rule, and of
// clean negatives by specific rules.
func (x *tally) row(split, family string) string {
	return fmt.Sprintf("%-5s %-14s %5d %8s %8s %8s %5d %8s %8s %8s", split, family, x.pos,
		cell(x.prefixSpec, x.prefixPos), cell(x.specific, x.pos), cell(x.any, x.pos),
		x.neg, cell(x.negSpecific, x.neg), cell(x.negAny, x.neg), cell(x.cleanSpecific, x.clean))
}

// cell formats n/d, or "-" when there is nothing to count.
func cell(n, d int) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f", ratio(n, d))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestGitleaksCorpus scores the secret rules on gitleaks' samples, per
// family and split, and fails below the thresholds above.
func TestGitleaksCorpus(t *testing.T) {
	samples := loadGitleaks(t)
	var log func(gitleaksSample, bool)
	if os.Getenv("GITLEAKS_MISSES") != "" { // list the tuning misses; never the held-out ones
		log = func(s gitleaksSample, generic bool) {
			if s.Split == "tune" {
				t.Logf("%s %s %s generic=%v: %q", s.Kind, s.Rule, s.Shape, generic, s.Text)
			}
		}
	}
	scores := scoreGitleaks(secretScanner(t), samples, log)
	var total tally
	for _, split := range []string{"tune", "held"} {
		fams := make([]string, 0, len(scores[split]))
		for f := range scores[split] {
			fams = append(fams, f)
		}
		slices.Sort(fams)
		var sum tally
		t.Logf("%-5s %-14s %5s %8s %8s %8s %5s %8s %8s %8s", split, "family", "tp", "prefix", "specific", "all", "fp", "fp-spec", "fp-all", "clean-sp")
		for _, f := range fams {
			x := scores[split][f]
			sum.add(*x)
			t.Log(x.row(split, f))
		}
		t.Log(sum.row(split, "ALL"))
		total.add(sum)
	}
	if r := ratio(total.prefixSpec, total.prefixPos); r < minSpecificRecall {
		t.Errorf("specific rules catch %.3f of prefix-shaped positives, want ≥ %.2f", r, minSpecificRecall)
	}
	if r := ratio(total.any, total.pos); r < minAllRecall {
		t.Errorf("secret rules catch %.3f of all positives, want ≥ %.2f", r, minAllRecall)
	}
	if r := ratio(total.cleanSpecific, total.clean); r > maxSpecificFalse {
		t.Errorf("specific rules flag %.3f of gitleaks' clean negatives, want ≤ %.2f", r, maxSpecificFalse)
	}
}
