package screen

import (
	"strings"
	"testing"

	"github.com/moatmesh/moat/policy"
)

// TestResolveUnion: overlapping matches become one span covering both,
// labelled by the strongest action and then the most specific rule.
func TestResolveUnion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		actions RuleActions
		want    span
	}{
		{"same action, specific wins", RuleActions{"phone": ActionRedact, "generic-high-entropy": ActionRedact}, span{start: 5, end: 40, rule: rPhone}},
		{"redact beats flag", RuleActions{"phone": ActionFlag, "generic-high-entropy": ActionRedact}, span{start: 5, end: 40, rule: rGeneric}},
	} {
		sc := mustScanner(t, tc.actions)
		got := sc.resolve([]span{{start: 10, end: 40, rule: rGeneric}, {start: 5, end: 15, rule: rPhone}, {start: 50, end: 60, rule: rPhone}})
		if len(got) != 2 || got[0].start != tc.want.start || got[0].end != tc.want.end || got[0].rule != tc.want.rule {
			t.Errorf("%s: got %+v, want %+v and the separate span", tc.name, got, tc.want)
		}
	}
}

// TestRedactWhole: no secret is left partly visible, whatever its length,
// whether it is scanned whole or streamed in pieces.
func TestRedactWhole(t *testing.T) {
	sc := mustScanner(t, allOn(ActionRedact))
	body := strings.Repeat("Zk9pQ2xWbTRuR3hL", 53) // 848 bytes of base64, like a 1Password service-account token
	for name, tc := range map[string]struct{ before, secret string }{
		"1password service account": {"", "ops_eyJ" + body},
		"telegram bot token":        {"", "5843245875:AAHTvlsQ1w8t5wXlbRr0cHv1o2dSlzVUhn8"},
		"generic value past 200":    {"api_key=", strings.Repeat("q8Zx3Lm9Vb2Nc7Rt5Yw1", 15)},
	} {
		secret := tc.secret
		text := "use " + tc.before + secret + " now"
		for _, size := range []int{0, 1, 7, 50} {
			out := redactedBy(sc, text, size)
			if !strings.HasPrefix(out, "use ") || !strings.HasSuffix(out, " now") {
				t.Errorf("%s (chunks of %d): the text around it changed: %q", name, size, out)
			}
			for i := 0; i+8 <= len(secret); i++ {
				if strings.Contains(out, secret[i:i+8]) {
					t.Errorf("%s (chunks of %d): %q left visible in %q", name, size, secret[i:i+8], out)
					break
				}
			}
		}
	}
}

// redactedBy checks text whole (size 0) or streams it in chunks of size.
func redactedBy(sc *Scanner, text string, size int) string {
	if size == 0 {
		out, _, _ := sc.Check(text)
		return out
	}
	return streamAll(sc, text, size)
}

// TestEvasions: invisible runes and full-width forms inside a secret do
// not hide it, and the redaction covers them too.
func TestEvasions(t *testing.T) {
	sc := mustScanner(t, allOn(ActionRedact))
	for name, text := range map[string]string{
		"zero-width spaces": "key AKIA\u200bQ3EGRT5N\u200bBX7KLM2P ok",
		"soft hyphens":      "key AKIA\u00adQ3EG\u00adRT5NBX7KLM2P ok",
		"bidi controls":     "key AKIAQ3EG\u202aRT5NBX7K\u202cLM2P ok",
		"full-width":        "key ＡＫＩＡＱ３ＥＧＲＴ５ＮＢＸ７ＫＬＭ２Ｐ ok",
	} {
		out, fs, _ := sc.Check(text)
		if out != "key [REDACTED:aws-access-key] ok" {
			t.Errorf("%s: got %q (findings %v)", name, out, fs)
		}
	}
}

// TestFromGuardSettings: per-side category actions override the
// shorthand, and the link allowlist takes CIDR prefixes.
func TestFromGuardSettings(t *testing.T) {
	g := policy.Guard{
		Redact:    []string{"secrets"},
		Links:     "block-external",
		Prompts:   policy.Actions{Secrets: "block", PII: "redact"},
		Answers:   policy.Actions{Links: "off"},
		LinkAllow: []string{"10.0.0.0/8", "*.corp.example"},
	}
	cfg := FromGuard(g, []string{"docs.example.com"})
	for _, tc := range []struct {
		side RuleActions
		rule string
		want Action
	}{
		{cfg.Input, "aws-access-key", ActionBlock},
		{cfg.Output, "aws-access-key", ActionRedact},
		{cfg.Input, "email", ActionRedact},
		{cfg.Output, "email", ActionOff},
		{cfg.Input, "exfil-link", ActionFlag},
		{cfg.Output, "exfil-link", ActionOff},
	} {
		if got := tc.side[tc.rule]; got != tc.want {
			t.Errorf("%s: %v, want %v", tc.rule, got, tc.want)
		}
	}
	sc := mustScanner(t, RuleActions{"exfil-link": ActionRedact}, cfg.LinkAllow...)
	for text, want := range map[string]bool{
		"![a](http://10.1.2.3/x.png)":             false,
		"![a](https://wiki.corp.example/p)":       false,
		"![a](https://docs.example.com/p)":        false,
		"![a](http://11.1.2.3/x.png)":             true,
		"![a](https://evil.test/?d=1)":            true,
		"![a](https://corp.example.evil.test/?d)": true,
	} {
		if got := len(sc.Scan(text)) > 0; got != want {
			t.Errorf("%s: fired %v, want %v", text, got, want)
		}
	}
}
