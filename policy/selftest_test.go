package policy

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestFailingTestsRejectPolicy checks that Check refuses a policy whose own
// tests fail, naming each failed assertion at its place.
func TestFailingTestsRejectPolicy(t *testing.T) {
	src := `{
  "groups": { "group:ml": ["alice@example.com", "idp:ml"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [
    { "src": ["autogroup:member"], "models": ["llama"] },
    { "src": ["group:ml"], "dst": ["tag:gpu:22"] },
  ],
  "tests": [
    { "src": "bob@example.com", "deny": ["model:llama"] },
    { "src": "bob@example.com", "accept": ["tag:gpu:22"] },
    { "src": "eve@example.com", "groups": ["idp:ml"], "accept": ["tag:gpu:22"], "deny": ["tag:gpu:23"] },
    { "src": "tag:gpu", "deny": ["model:llama"] },
  ],
}`
	if _, err := Parse("p.hujson", []byte(src)); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	_, err := Check("p.hujson", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Check accepted a policy whose tests fail (err %v)", err)
	}
	want := []string{
		"p.hujson:10:42: test failed: bob@example.com should be denied model:llama but is allowed by grants[0] (line 6)",
		"p.hujson:11:44: test failed: bob@example.com should be allowed tag:gpu:22 but no grant allows it",
	}
	if len(list) != len(want) {
		t.Fatalf("got %d failures, want %d:\n%v", len(list), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(list[i].Error(), w) {
			t.Errorf("failure %d:\n got  %s\n want %s…", i, list[i], w)
		}
	}
}

func TestDesignExampleTestsHold(t *testing.T) {
	src, err := os.ReadFile("testdata/design.hujson")
	if err != nil {
		t.Fatal(err)
	}
	// Flip one assertion and the policy must be refused.
	flipped := strings.Replace(string(src), `"accept": ["model:llama-3.1-70b"]`, `"deny": ["model:llama-3.1-70b"]`, 1)
	if flipped == string(src) {
		t.Fatal("test fixture changed; update this test")
	}
	if _, err := Check("design.hujson", []byte(flipped)); err == nil || !strings.Contains(err.Error(), "alice@example.com should be denied model:llama-3.1-70b but is allowed by grants[0]") {
		t.Errorf("flipped assertion: err = %v", err)
	}
}

func TestExplain(t *testing.T) {
	p, _ := loadCase(t, "mesh")
	tests := []struct {
		who     Identity
		target  string
		allowed bool
		grant   string
		text    []string // substrings of the rendered explanation
	}{
		{Identity{Login: "alice@example.com"}, "model:llama-3.1-8b", true, "grants[0]", []string{
			"ALLOWED: alice@example.com is allowed model:llama-3.1-8b",
			"by grants[0] (mesh.hujson:26:5): mfa within 12h, rpm 120",
			"when the last MFA is older than 12h, by grants[1] (mesh.hujson:30:5): rpm 20, tokensPerDay 100000, guard injection=flag redact=secrets links=allow",
			"matches: alice@example.com, autogroup:member, group:everyone, group:ml",
		}},
		{Identity{Login: "alice@example.com"}, "model:llama-3.1-70b", true, "grants[0]", []string{
			"when the last MFA is older than 12h: denied until the caller signs in with MFA again",
		}},
		{Identity{Login: "bob@example.com"}, "model:llama-3.1-70b", false, "", []string{
			"DENIED: bob@example.com is denied model:llama-3.1-70b",
			"grants[0] (mesh.hujson:26:5) covers model:llama-3.1-70b for group:ml, which does not include bob@example.com",
			"grants[1] (mesh.hujson:30:5) applies to bob@example.com but covers only model:llama-3.1-8b, model:embed-small",
		}},
		{Identity{Login: "dave@example.com"}, "tag:gpu-big:8101", true, "grants[5]", []string{"by grants[5] (mesh.hujson:39:5)"}},
		{Identity{Tags: []string{"tag:ci"}}, "tag:gpu:22", false, "", []string{
			"grants[4] (mesh.hujson:38:5) covers tag:gpu:22 for group:admins, which does not include tag:ci",
		}},
		{Identity{}, "model:embed-small", false, "", []string{"matches: nothing"}},
	}
	for _, tt := range tests {
		e, err := p.Explain(tt.who, tt.target)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if e.Grant != nil {
			got = e.Grant.ID()
		}
		if e.Allowed != tt.allowed || got != tt.grant {
			t.Errorf("%s → %s: allowed %v by %q, want %v by %q", tt.who.String(), tt.target, e.Allowed, got, tt.allowed, tt.grant)
		}
		for _, s := range tt.text {
			if !strings.Contains(e.String(), s) {
				t.Errorf("explanation lacks %q:\n%s", s, e)
			}
		}
	}
	for _, bad := range []string{"model:nope", "tag:nope:22", "llama-3.1-8b", "tag:gpu:1-2"} {
		if _, err := p.Explain(Identity{Login: "a@b.c"}, bad); err == nil {
			t.Errorf("Explain(%q) succeeded", bad)
		}
	}
}
