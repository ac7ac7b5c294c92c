package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmesh/moat/internal/cli"
)

const goodPolicy = `{
  "groups": { "group:ml": ["alice@example.com", "idp:ml-research"] },
  "tagOwners": { "tag:gpu": ["autogroup:admin"] },
  "models": { "llama-3.1-70b": { "servedBy": ["tag:gpu"] } },
  "grants": [
    { "src": ["group:ml"], "models": ["*"], "mfa": "12h", "limits": { "rpm": 120 } },
    { "src": ["autogroup:admin"], "dst": ["tag:gpu:22"] },
  ],
  "tests": [
    { "src": "alice@example.com", "accept": ["model:llama-3.1-70b"] },
    { "src": "bob@example.com", "deny": ["model:llama-3.1-70b", "tag:gpu:22"] },
  ],
}
`

func writePolicy(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runPolicy(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = cli.Run(newRoot(), append([]string{"policy"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestPolicyCheck(t *testing.T) {
	good := writePolicy(t, "good.hujson", goodPolicy)
	failing := writePolicy(t, "failing.hujson", strings.Replace(goodPolicy, `"bob@example.com"`, `"alice@example.com"`, 1))
	broken := writePolicy(t, "broken.hujson", strings.Replace(goodPolicy, `"rpm": 120`, `"rpm": -1`, 1))
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr []string
	}{
		{"valid", []string{"check", good}, 0, good + ": ok: 1 models, 2 grants; 2 tests (3 assertions) pass\n", nil},
		{"failing test", []string{"check", failing}, 1, "", []string{
			failing + ":11:44: test failed: alice@example.com should be denied model:llama-3.1-70b but is allowed by grants[0] (line 6)",
		}},
		{"invalid", []string{"check", broken}, 1, "", []string{
			broken + ":6:78: grants[0].limits.rpm must be a whole number from 1 to 2147483647, not -1",
		}},
		{"one bad among several", []string{"check", good, broken}, 1, good + ": ok", []string{broken + ":6:78:"}},
		{"missing file", []string{"check", filepath.Join(t.TempDir(), "nope.hujson")}, 1, "", []string{"nope.hujson: no such file or directory"}},
		{"no file", []string{"check"}, 2, "", []string{"missing the policy FILE to check", "Run 'moat-coordinator policy check --help'"}},
		{"no subcommand", nil, 2, "", []string{"name a subcommand: check, explain"}},
		{"unknown subcommand", []string{"lint"}, 2, "", []string{`unknown subcommand "lint"`}},
		{"help", []string{"--help"}, 0, "Check or explain", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPolicy(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.HasPrefix(stdout, tt.stdout) || (tt.stdout == "" && stdout != "") {
				t.Errorf("stdout = %q, want it to start with %q", stdout, tt.stdout)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
		})
	}
}

func TestPolicyExplain(t *testing.T) {
	good := writePolicy(t, "good.hujson", goodPolicy)
	failing := writePolicy(t, "failing.hujson", strings.Replace(goodPolicy, `"bob@example.com"`, `"alice@example.com"`, 1))
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"allowed", []string{"explain", good, "--src", "alice@example.com", "--model", "llama-3.1-70b"}, 0, []string{
			"ALLOWED: alice@example.com is allowed model:llama-3.1-70b",
			"by grants[0] (" + good + ":6:5): mfa within 12h, rpm 120",
		}, nil},
		{"denied, flags first", []string{"explain", "--src", "bob@example.com", "--model", "llama-3.1-70b", good}, 3, []string{
			"DENIED: bob@example.com is denied model:llama-3.1-70b",
			"grants[0] (" + good + ":6:5) covers model:llama-3.1-70b for group:ml, which does not include bob@example.com",
		}, nil},
		{"idp group", []string{"explain", good, "--src", "erin@example.com", "--groups", "idp:ml-research", "--model", "llama-3.1-70b"}, 0, []string{"ALLOWED"}, nil},
		{"network", []string{"explain", good, "--src", "root@example.com", "--admin", "--dst", "tag:gpu:22"}, 0, []string{"ALLOWED: root@example.com is allowed tag:gpu:22", "by grants[1]"}, nil},
		{"tag source", []string{"explain", good, "--src", "tag:gpu", "--dst", "tag:gpu:22"}, 3, []string{"DENIED"}, nil},
		{"failing tests warn", []string{"explain", failing, "--src", "bob@example.com", "--model", "llama-3.1-70b"}, 3, []string{"DENIED"}, []string{"warning: this policy's own tests fail"}},
		{"unknown model", []string{"explain", good, "--src", "a@b.c", "--model", "gpt"}, 2, nil, []string{`unknown model "gpt"`}},
		{"no src", []string{"explain", good, "--model", "llama-3.1-70b"}, 2, nil, []string{"--src is required"}},
		{"mcp tool", []string{"explain", "../../policy/testdata/mcp.hujson", "--src", "bob@example.com", "--mcp", "jira:search_issues"}, 3, []string{"DENIED: bob@example.com is denied mcp:jira:search_issues", "covers only mcp:jira:get_issue"}, nil},
		{"model and dst", []string{"explain", good, "--src", "a@b.c", "--model", "x", "--dst", "tag:gpu:22"}, 2, nil, []string{"exactly one of --model, --mcp and --dst"}},
		{"two files", []string{"explain", good, good, "--src", "a@b.c", "--model", "x"}, 2, nil, []string{`unexpected argument "` + good + `"`}},
		{"bad flag", []string{"explain", good, "--source", "a@b.c"}, 2, nil, []string{"unknown flag: --source"}},
		{"json", []string{"explain", good, "--src", "alice@example.com", "--model", "llama-3.1-70b", "--json"}, 0, []string{`"decision": "allowed"`, `"id": "grants[0]"`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runPolicy(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
		})
	}
}
