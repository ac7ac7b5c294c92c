package screen

import (
	"slices"
	"sort"
	"testing"
)

// corpusAllow is the link allowlist the corpus assumes.
var corpusAllow = []string{"docs.example.com", "*.corp.example"}

type corpusEntry struct {
	Text   string   `json:"text"`
	Labels []string `json:"labels"`
	Kind   string   `json:"kind"`
}

func loadCorpus(t testing.TB) []corpusEntry {
	return loadJSONL[corpusEntry](t, "testdata/corpus.jsonl")
}

// score counts, per rule, entries it rightly fired on (tp), wrongly fired
// on (fp) and missed (fn).
type score struct{ tp, fp, fn int }

func (s score) precision() float64 {
	if s.tp+s.fp == 0 {
		return 1
	}
	return float64(s.tp) / float64(s.tp+s.fp)
}

func (s score) recall() float64 {
	if s.tp+s.fn == 0 {
		return 1
	}
	return float64(s.tp) / float64(s.tp+s.fn)
}

func scoreCorpus(t testing.TB, sc *Scanner, entries []corpusEntry, verbose bool) map[string]*score {
	scores := map[string]*score{}
	for _, r := range Rules() {
		scores[r.ID] = &score{}
	}
	for _, e := range entries {
		got := map[string]bool{}
		for _, f := range sc.Scan(e.Text) {
			got[f.Rule] = true
		}
		for id, s := range scores {
			want := slices.Contains(e.Labels, id)
			switch {
			case want && got[id]:
				s.tp++
			case got[id]:
				s.fp++
				if verbose {
					t.Logf("false positive %s: %q", id, e.Text)
				}
			case want:
				s.fn++
				if verbose {
					t.Logf("missed %s: %q", id, e.Text)
				}
			}
		}
	}
	return scores
}

// TestCorpusReport scores every detector on testdata/corpus.jsonl and
// fails below the targets: secrets and personal data recall 0.95 and
// precision 0.98; injection precision 0.95 (its recall is reported only).
func TestCorpusReport(t *testing.T) {
	entries := loadCorpus(t)
	sc := mustScanner(t, allOn(ActionFlag), corpusAllow...)
	scores := scoreCorpus(t, sc, entries, testing.Verbose())
	ids := make([]string, 0, len(scores))
	for id := range scores {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	cats := map[string]*score{}
	for _, id := range ids {
		s := scores[id]
		r, _ := ruleByID(id)
		cat := ruleDefs[r].cat.String()
		if cats[cat] == nil {
			cats[cat] = &score{}
		}
		c := cats[cat]
		c.tp, c.fp, c.fn = c.tp+s.tp, c.fp+s.fp, c.fn+s.fn
		t.Logf("%-22s %-9s tp=%-3d fp=%-2d fn=%-2d precision=%.3f recall=%.3f", id, cat, s.tp, s.fp, s.fn, s.precision(), s.recall())
		switch cat {
		case "secret", "pii":
			if s.recall() < 0.95 || s.precision() < 0.98 {
				t.Errorf("%s: precision %.3f recall %.3f, want ≥0.98 / ≥0.95", id, s.precision(), s.recall())
			}
		case "injection", "exfil":
			if s.precision() < 0.95 {
				t.Errorf("%s: precision %.3f, want ≥0.95", id, s.precision())
			}
		}
	}
	for _, cat := range []string{"secret", "pii", "injection", "exfil"} {
		s := cats[cat]
		t.Logf("%-22s %-9s tp=%-3d fp=%-2d fn=%-2d precision=%.3f recall=%.3f", "ALL", cat, s.tp, s.fp, s.fn, s.precision(), s.recall())
	}
	pos := 0
	for _, e := range entries {
		if len(e.Labels) > 0 {
			pos++
		}
	}
	if neg := len(entries) - pos; neg < pos {
		t.Errorf("corpus has %d benign entries for %d positive ones; it needs at least as many", neg, pos)
	}
}
