package screen

import (
	"math/rand/v2"
	"testing"
)

// pushSplits feeds text to a fresh Stream cut at random places and
// returns what comes out.
func pushSplits(sc *Scanner, text string, r *rand.Rand) string {
	st := sc.NewStream()
	var out []byte
	for i := 0; i < len(text); {
		n := 1 + r.IntN(min(len(text)-i, 1+r.IntN(80)))
		out, _ = st.Push(out, []byte(text[i:i+n]))
		i += n
	}
	out, _ = st.Flush(out)
	return string(out)
}

// TestSplitsAgree is the bounded property test: every text of both
// corpora, redacted whole and streamed in random pieces, comes out the
// same. A difference would mean a secret half-redacted in one of them.
func TestSplitsAgree(t *testing.T) {
	sc := mustScanner(t, allOn(ActionRedact), corpusAllow...)
	var texts []string
	for _, e := range loadCorpus(t) {
		texts = append(texts, e.Text)
	}
	for _, s := range loadGitleaks(t) {
		texts = append(texts, s.Text)
	}
	r := rand.New(rand.NewPCG(1, 2))
	rounds := 2
	if testing.Short() {
		rounds = 1
	}
	bad := 0
	for _, text := range texts {
		want, _, _ := sc.Check(text)
		for range rounds {
			if got := pushSplits(sc, text, r); got != want && bad < 10 {
				bad++
				k := 0
				for k < min(len(got), len(want)) && got[k] == want[k] {
					k++
				}
				t.Errorf("split differs at %d:\nwhole …%q\nsplit …%q", k, want[max(0, k-40):min(len(want), k+80)], got[max(0, k-40):min(len(got), k+80)])
			}
		}
	}
}
