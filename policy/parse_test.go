package policy

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// minimal is prepended to cases that need some definitions to refer to.
const defs = `
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
`

func TestParseDesignExample(t *testing.T) {
	src, err := os.ReadFile("testdata/design.hujson")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Check("design.hujson", src)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if len(p.Grants) != 3 || len(p.Models) != 2 || len(p.Tests) != 4 {
		t.Fatalf("got %d grants, %d models, %d tests", len(p.Grants), len(p.Models), len(p.Tests))
	}
	g := p.Grants[0]
	if g.ID() != "grants[0]" || g.Pos != (Pos{14, 5}) || g.MFA != Duration(12*60*60e9) || g.Limits.TPM != 200000 {
		t.Errorf("grants[0] = %+v", g)
	}
	if got := p.Grants[1].Guard; got.Injection != "block" || strings.Join(got.Redact, ",") != "secrets,pii" || got.Links != "block-external" {
		t.Errorf("grants[1].guard = %+v", got)
	}
}

// TestParseErrors checks that each kind of mistake is refused at the right
// place with a message that says what to do.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // "LINE:COL: substring of the message"
	}{
		{"syntax", "{\n  \"groups\": {,\n}", "2:14: syntax error"},
		{"empty", "", "1:1: syntax error"},
		{"not object", `[]`, "1:1: the policy must be an object"},
		{"unknown top-level key", "{\n  \"acls\": [],\n}", `2:3: unknown key "acls" in the policy; allowed keys are "groups"`},
		{"misspelt key", `{"tagowners": {}}`, `1:2: unknown key "tagowners" in the policy; did you mean "tagOwners"?`},
		{"duplicate top-level key", "{\"grants\": [],\n \"grants\": []}", `2:2: duplicate key "grants" in the policy (first at line 1)`},
		{"duplicate nested key", `{"models": {"m": {"servedBy": [], "servedBy": []}}}`, `1:35: duplicate key "servedBy"`},
		{"duplicate group", `{"groups": {"group:a": [], "group:a": []}}`, `1:28: duplicate key "group:a" in "groups"`},
		{"bad group name", `{"groups": {"ml": []}}`, `1:13: "ml" is not a valid name for a group; write group:NAME`},
		{"unknown nested group", `{"groups": {"group:a": ["group:b"]}}`, `1:25: group:a[0]: unknown group "group:b"; define it under "groups"`},
		{"duplicate groups section", `{` + defs + `"groups": {"group:x": ["tag:gpu"]}}`, `5:1: duplicate key "groups" in the policy (first at line 2)`},
		{"tag as group member", `{"tagOwners": {"tag:gpu": []}, "groups": {"group:x": ["tag:gpu"]}}`, `1:55: group:x[0]: "tag:gpu": tags cannot be members here`},
		{"group cycle", "{\"groups\": {\n \"group:a\": [\"group:b\"],\n \"group:b\": [\"group:c\"],\n \"group:c\": [\"group:a\"]}}", "2:2: groups form a cycle: group:a → group:b → group:c → group:a"},
		{"self cycle", `{"groups": {"group:a": ["group:a"]}}`, "1:13: groups form a cycle: group:a → group:a"},
		{"model without servedBy", `{"tagOwners": {"tag:gpu": []}, "models": {"m": {}}}`, `1:43: model "m" has no servedBy`},
		{"unknown servedBy tag", `{"models": {"m": {"servedBy": ["tag:tpu"]}}}`, `1:32: model "m".servedBy[0]: unknown tag "tag:tpu"; define it under "tagOwners"`},
		{"bad sha256", `{"tagOwners": {"tag:gpu": []}, "models": {"m": {"servedBy": ["tag:gpu"], "sha256": "9f2c"}}}`, `1:84: model "m".sha256 must be 64 hexadecimal digits`},
		{"zero maxOutputTokens", `{"tagOwners": {"tag:gpu": []}, "models": {"m": {"servedBy": ["tag:gpu"], "maxOutputTokens": 0}}}`, `model "m".maxOutputTokens must be a whole number from 1 to 1048576, not 0`},
		{"encryptedAtRest not a bool", `{"tagOwners": {"tag:gpu": []}, "models": {"m": {"servedBy": ["tag:gpu"], "encryptedAtRest": "yes"}}}`, `model "m".encryptedAtRest must be true or false, not a string`},
		{"huge maxChoices", `{"tagOwners": {"tag:gpu": []}, "models": {"m": {"servedBy": ["tag:gpu"], "maxChoices": 1000}}}`, `model "m".maxChoices must be a whole number from 1 to 128, not 1000`},
		{"bad model name", `{"models": {"a b": {}}}`, `1:13: "a b" is not a valid model name`},
		{"unknown model in grant", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["gpt-4"]}]}`, `5:45: grants[0].models[0]: "gpt-4" matches no model; declare the model under "models"`},
		{"glob matching nothing", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["gpt-*"]}]}`, `5:45: grants[0].models[0]: "gpt-*" matches no model`},
		{"unknown group in src", `{` + defs + `"grants": [{"src": ["group:x"], "models": ["llama"]}]}`, `5:21: grants[0].src[0]: unknown group "group:x"`},
		{"unknown tag in src", `{` + defs + `"grants": [{"src": ["tag:cpu"], "models": ["llama"]}]}`, `5:21: grants[0].src[0]: unknown tag "tag:cpu"`},
		{"star src", `{` + defs + `"grants": [{"src": ["*"], "models": ["llama"]}]}`, `5:21: grants[0].src[0]: "*": not an identity; use autogroup:member`},
		{"unknown autogroup", `{` + defs + `"grants": [{"src": ["autogroup:owner"], "models": ["llama"]}]}`, `5:21: grants[0].src[0]: "autogroup:owner": unknown autogroup`},
		{"bare word src", `{` + defs + `"grants": [{"src": ["alice"], "models": ["llama"]}]}`, `5:21: grants[0].src[0]: "alice": not an identity`},
		{"empty src", `{` + defs + `"grants": [{"src": [], "models": ["llama"]}]}`, `5:20: grants[0].src is empty; list at least one entry`},
		{"no src", `{` + defs + `"grants": [{"models": ["llama"]}]}`, `5:12: grants[0] has no src`},
		{"grants nothing", `{` + defs + `"grants": [{"src": ["group:ml"]}]}`, `5:12: grants[0] grants nothing; add "models", "mcp" and/or "dst"`},
		{"limits without models", `{` + defs + `"grants": [{"src": ["group:ml"], "dst": ["tag:gpu:22"], "limits": {"rpm": 1}}]}`, `5:12: grants[0] sets "limits", which apply to model and MCP use only`},
		{"negative limit", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "limits": {"rpm": -5}}]}`, `5:73: grants[0].limits.rpm must be a whole number from 1 to 2147483647, not -5`},
		{"zero limit", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "limits": {"tpm": 0}}]}`, `grants[0].limits.tpm must be a whole number from 1`},
		{"fractional limit", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "limits": {"concurrency": 1.5}}]}`, `grants[0].limits.concurrency must be a whole number`},
		{"string limit", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "limits": {"rpm": "120"}}]}`, `5:73: grants[0].limits.rpm must be a number, not a string`},
		{"unknown limit", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "limits": {"rph": 5}}]}`, `5:66: unknown key "rph" in grants[0].limits`},
		{"bad mfa", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "mfa": "12 hours"}]}`, `5:62: grants[0].mfa: invalid duration "12 hours"`},
		{"negative mfa", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "mfa": "-1h"}]}`, `grants[0].mfa: invalid duration "-1h"`},
		{"zero mfa", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "mfa": "0s"}]}`, `grants[0].mfa: zero duration "0s": leave the key out`},
		{"mfa number", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "mfa": 12}]}`, `grants[0].mfa must be a string, not a number`},
		{"bad injection", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "guard": {"injection": "warn"}}]}`, `5:78: grants[0].guard.injection: unknown value "warn"; use one of "off", "flag", "block"`},
		{"bad redact", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "guard": {"redact": ["emails"]}}]}`, `grants[0].guard.redact[0]: unknown value "emails"`},
		{"twice redact", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "guard": {"redact": ["pii", "pii"]}}]}`, `grants[0].guard.redact[1]: "pii" is listed twice`},
		{"bad links", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "guard": {"links": "block"}}]}`, `grants[0].guard.links: unknown value "block"`},
		{"bad side action", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "guard": {"prompts": {"secrets": "mask"}}}]}`, `grants[0].guard.prompts.secrets: unknown value "mask"; use one of "off", "flag", "redact", "block"`},
		{"bad side category", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "guard": {"answers": {"emails": "redact"}}}]}`, `unknown key "emails" in grants[0].guard.answers`},
		{"bad link allow", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "guard": {"linkAllow": ["https://docs.example.com"]}}]}`, `grants[0].guard.linkAllow[0]: "https://docs.example.com" is not a host name, *.domain, IP address or CIDR prefix`},
		{"bad prompts", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "audit": {"prompts": "all"}}]}`, `grants[0].audit.prompts: unknown value "all"; use one of "off", "hash", "full"`},
		{"bad retention", `{` + defs + `"grants": [{"src": ["group:ml"], "models": ["llama"], "audit": {"retention": "forever"}}]}`, `grants[0].audit.retention: invalid duration "forever"`},
		{"bad dst", `{` + defs + `"grants": [{"src": ["group:ml"], "dst": ["gpu:22"]}]}`, `5:42: grants[0].dst[0]: "gpu:22" is not a destination`},
		{"bad port", `{` + defs + `"grants": [{"src": ["group:ml"], "dst": ["tag:gpu:70000"]}]}`, `grants[0].dst[0]: "tag:gpu:70000": bad port "70000"`},
		{"reversed range", `{` + defs + `"grants": [{"src": ["group:ml"], "dst": ["tag:gpu:90-80"]}]}`, `bad port "90-80"`},
		{"unknown dst tag", `{` + defs + `"grants": [{"src": ["group:ml"], "dst": ["tag:cpu:22"]}]}`, `grants[0].dst[0]: unknown tag "tag:cpu"`},
		{"grant not object", `{` + defs + `"grants": ["group:ml"]}`, `5:12: grants[0] must be an object`},
		{"test unknown model", `{` + defs + `"tests": [{"src": "alice@example.com", "accept": ["model:gpt"]}]}`, `5:51: tests[0].accept[0]: unknown model "gpt"`},
		{"test bad target", `{` + defs + `"tests": [{"src": "alice@example.com", "deny": ["llama"]}]}`, `tests[0].deny[0]: "llama" is not a test target`},
		{"test group src", `{` + defs + `"tests": [{"src": "group:ml", "deny": ["model:llama"]}]}`, `tests[0].src: "group:ml" is not a person's login or a tag`},
		{"test tag with groups", `{` + defs + `"tests": [{"src": "tag:gpu", "groups": ["idp:x"], "deny": ["model:llama"]}]}`, `tests[0].src is a tag, which has no "groups"`},
		{"test idp group", `{` + defs + `"tests": [{"src": "a@b.c", "groups": ["group:ml"], "deny": ["model:llama"]}]}`, `tests[0].groups[0]: "group:ml" is not an IdP group`},
		{"test asserts nothing", `{` + defs + `"tests": [{"src": "a@b.c"}]}`, `tests[0] asserts nothing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkRefused(t, tt.src, tt.want) })
	}
}

// checkRefused checks that Parse refuses src with an error containing
// want, "LINE:COL: message" pinning the position too.
func checkRefused(t *testing.T, src, want string) {
	t.Helper()
	_, err := Parse("p.hujson", []byte(src))
	if err == nil {
		t.Fatalf("Parse accepted:\n%s", src)
	}
	if want[0] >= '0' && want[0] <= '9' {
		want = "p.hujson:" + want
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
	}
	var e *Error
	if !errors.As(err, &e) || e.File != "p.hujson" || e.Line < 1 || e.Col < 1 {
		t.Errorf("error %#v lacks a position", e)
	}
}

// TestParseReportsEveryError checks that one pass reports all mistakes, in
// file order, so an admin fixes them in one go.
func TestParseReportsEveryError(t *testing.T) {
	src := "{\n\"grants\": [{\"src\": [\"group:x\"], \"models\": [\"m\"]}],\n\"bogus\": 1,\n}"
	_, err := Parse("p", []byte(src))
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	for i := 1; i < len(list); i++ {
		if list[i].Line < list[i-1].Line {
			t.Errorf("errors out of order:\n%v", err)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "anything", true},
		{"llama-*", "llama-3.1-70b", true},
		{"llama-*", "qwen", false},
		{"*-70b", "llama-3.1-70b", true},
		{"*-70b", "llama-3.1-8b", false},
		{"meta/*", "meta/llama", true},
		{"l*a*b", "llama-3.1-70b", true},
		{"l*x*b", "llama-3.1-70b", false},
		{"a*a", "a", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}
