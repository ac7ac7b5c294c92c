package corpus_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/node/screen"
	"github.com/zricethezav/gitleaks/v8/detect"
)

// sample is one line of ../testdata/gitleaks/samples.jsonl.
type sample struct {
	Rule, Family, Kind, Split, Text string
}

func loadSamples(b *testing.B) []sample {
	f, err := os.Open("../testdata/gitleaks/samples.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var out []sample
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var s sample
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			b.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// secretScanner flags every secret rule of moat.
func secretScanner(b *testing.B) *screen.Scanner {
	ra := screen.RuleActions{}
	for _, r := range screen.Rules() {
		if r.Category == screen.CatSecret {
			ra[r.ID] = screen.ActionFlag
		}
	}
	sc, err := screen.NewScanner(ra, nil)
	if err != nil {
		b.Fatal(err)
	}
	return sc
}

func gitleaks(b *testing.B) *detect.Detector {
	d, err := detect.NewDetectorDefaultConfig()
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// prompt4K is a 4 KiB prompt of prose and code with a few secrets in it.
func prompt4K() string {
	const para = "Can you review this Go handler? It reads the user's order (id 2024-000123), " +
		"checks the stock for 17 items and returns JSON. func handle(w http.ResponseWriter, r *http.Request) { " +
		"ctx := r.Context(); n, err := strconv.Atoi(r.URL.Query().Get(\"n\")); if err != nil { return } } " +
		"Bitte erkläre auch, wie ich die Fehler besser behandle. "
	s := strings.Repeat(para, 4096/len(para)+1)[:3800]
	return s + " AWS_ACCESS_KEY_ID=AKIAQ3EGRT5NBX7KLM2P and github token ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5 " +
		"and 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 plus password = \"Zq8#mV2!pL9xR4tW\" thanks"
}

// BenchmarkSideBySide scans the same inputs with moat's secret rules and
// with gitleaks' default detector and reports both times and their ratio
// (gitleaks/moat), for a 4 KiB prompt and for every gitleaks sample.
func BenchmarkSideBySide(b *testing.B) {
	sc, d := secretScanner(b), gitleaks(b)
	prompt := prompt4K()
	samples := loadSamples(b)
	for _, in := range []struct {
		name  string
		texts []string
	}{
		{"prompt4K", []string{prompt}},
		{"samples", texts(samples)},
	} {
		b.Run(in.name, func(b *testing.B) {
			var moat, gl time.Duration
			for b.Loop() {
				t0 := time.Now()
				for _, t := range in.texts {
					sc.Scan(t)
				}
				t1 := time.Now()
				for _, t := range in.texts {
					d.DetectString(t)
				}
				moat, gl = moat+t1.Sub(t0), gl+time.Since(t1)
			}
			n := float64(b.N)
			b.ReportMetric(float64(moat.Microseconds())/n, "moat-µs/op")
			b.ReportMetric(float64(gl.Microseconds())/n, "gitleaks-µs/op")
			b.ReportMetric(float64(gl)/float64(moat), "gitleaks/moat")
		})
	}
	b.Run("recall", func(b *testing.B) {
		for b.Loop() {
		}
		report(b, sc, d, samples)
	})
}

func texts(samples []sample) []string {
	out := make([]string, len(samples))
	for i, s := range samples {
		out[i] = s.Text
	}
	return out
}

// tally counts positives caught and negatives flagged.
type tally struct{ pos, moatPos, glPos, neg, moatNeg, glNeg int }

// report logs, per split and family, the recall and false-alarm rate of
// moat (any secret rule) and of gitleaks on gitleaks' own samples.
func report(b *testing.B, sc *screen.Scanner, d *detect.Detector, samples []sample) {
	per := map[string]*tally{}
	for _, s := range samples {
		m, g := len(sc.Scan(s.Text)) > 0, len(d.DetectString(s.Text)) > 0
		for _, k := range []string{s.Split + " " + s.Family, s.Split + " ALL"} {
			t := per[k]
			if t == nil {
				t = &tally{}
				per[k] = t
			}
			if s.Kind == "tp" {
				t.pos, t.moatPos, t.glPos = t.pos+1, t.moatPos+b2i(m), t.glPos+b2i(g)
			} else {
				t.neg, t.moatNeg, t.glNeg = t.neg+1, t.moatNeg+b2i(m), t.glNeg+b2i(g)
			}
		}
	}
	keys := make([]string, 0, len(per))
	for k := range per {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { // the two ALL rows first
		return strings.Compare(strings.Replace(a, " ALL", " ", 1), strings.Replace(b, " ALL", " ", 1))
	})
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-20s %5s %8s %8s %5s %8s %8s\n", "split family", "tp", "moat", "gitleaks", "fp", "moat", "gitleaks")
	for _, k := range keys {
		t := per[k]
		fmt.Fprintf(&sb, "%-20s %5d %8.3f %8.3f %5d %8.3f %8.3f\n", k, t.pos, ratio(t.moatPos, t.pos), ratio(t.glPos, t.pos),
			t.neg, ratio(t.moatNeg, t.neg), ratio(t.glNeg, t.neg))
	}
	fmt.Print(sb.String()) // b.Log would cut the table after ten lines
	all := per["tune ALL"]
	b.ReportMetric(ratio(all.moatPos, all.pos), "moat-recall")
	b.ReportMetric(ratio(all.glPos, all.pos), "gitleaks-recall")
}

func ratio(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
