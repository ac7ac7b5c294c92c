package policy

import (
	"slices"
	"testing"
)

func TestGrantsOf(t *testing.T) {
	p, err := Parse("p.hujson", []byte(`{
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama-70b": { "servedBy": ["tag:gpu"] }, "qwen": { "servedBy": ["tag:gpu"] } },
  "grants": [
    { "src": ["group:ml"], "models": ["llama-*"] },
    { "src": ["idp:support"], "models": ["qwen"] },
    { "src": ["bob@example.com"], "models": ["*"], "mfa": "1h" },
    { "src": ["group:ml"], "dst": ["tag:gpu:22"] },
  ],
}`))
	if err != nil {
		t.Fatal(err)
	}
	ids := func(gs []*Grant) (out []string) {
		for _, g := range gs {
			out = append(out, g.ID())
		}
		return out
	}
	if got := ids(p.GrantsOf("llama-70b")); !slices.Equal(got, []string{"grants[0]", "grants[2]"}) {
		t.Errorf("llama-70b: %v", got)
	}
	if got := ids(p.GrantsOf("qwen")); !slices.Equal(got, []string{"grants[1]", "grants[2]"}) {
		t.Errorf("qwen: %v", got)
	}
	if got := p.GrantsOf("unknown"); got != nil {
		t.Errorf("unknown model: %v", ids(got))
	}
}
