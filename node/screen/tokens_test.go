package screen

import (
	"strings"
	"testing"
)

// TestTokenFormats checks formats whose exact layout decides: a match
// must fire, a near miss (wrong length, placeholder, no structure) must not.
func TestTokenFormats(t *testing.T) {
	sc := secretScanner(t)
	sentryJSON := "sntrys_eyJpYXQiOjE3MjkyNzg1ODEuMDgxMTUzLCJ1cmwiOiJodHRwczovL3NlbnRyeS5pbyIsInJlZ2lvbl91cmwiOiJodHRwczovL3VzLnNlbnRyeS5pbyIsIm9yZyI6ImdsYW1hIn0=_"
	tests := []struct {
		name      string
		hit, miss []string
	}{
		{"sentry org token",
			[]string{sentryJSON + "NDtyKO3XyRQqwfCL5yaugRWix7G2rKwrmSpIGFvsem4", "token: " + sentryJSON + "NDtyKO3XyRQqwfCL5yaugRWix7G2rKwrmSpIGFvsem4 end"},
			[]string{sentryJSON + "NDtyKO3XyRQqwfCL5yaugRWix7G2rKwrmSpIGFvsem", sentryJSON + "NDtyKO3XyRQqwfCL5yaugRWix7G2rKwrmSpIGFvsem4x",
				"sntrys_" + strings.Repeat("B9TUnRqS5E48", 8)}},
		{"sourcegraph token",
			[]string{"sgp_6d2FabeB6ADd229Bc199FabA28fD3efb57dF0bD3"},
			[]string{"sgp_5555555dAAAAA7777777CcccCFaaaaaaaaaaaaaa"}},
		{"fixed-length vendor body",
			[]string{"INFRACOST_API_KEY=ico-q8Zx3Lm9Vb2Nc7Rt5Yw1Kp4sHj6Gf0Da"},
			[]string{"ico-q8Zx3Lm9Vb2Nc7Rt5Yw1Kp4sHj6Gf0DaX"}},
	}
	for _, tc := range tests {
		for _, s := range tc.hit {
			if fs := sc.Scan(s); len(fs) == 0 || fs[0].Rule == ruleDefs[rGeneric].id {
				t.Errorf("%s: %q: no specific finding (%v)", tc.name, s, fs)
			}
		}
		for _, s := range tc.miss {
			for _, f := range sc.Scan(s) {
				if f.Rule != ruleDefs[rGeneric].id {
					t.Errorf("%s: %q: flagged as %s", tc.name, s, f.Rule)
				}
			}
		}
	}
}
