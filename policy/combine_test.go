package policy

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// combinePolicy wraps grants in a policy where alice is in group:a and
// group:b, and model "m" is served by tag:gpu.
func combinePolicy(t *testing.T, grants ...string) *Policy {
	t.Helper()
	src := `{
  "groups": { "group:a": ["alice@example.com"], "group:b": ["idp:b"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "m": { "servedBy": ["tag:gpu"] }, "other": { "servedBy": ["tag:gpu"] } },
  "grants": [` + strings.Join(grants, ",\n") + `],
}`
	p, err := Parse("combine.hujson", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return p
}

// TestCombination pins down the rule of docs/policy.md: candidates ordered
// by generosity of limits (rpm, tpm, concurrency, tokensPerDay, maxTokens;
// absent = unlimited), ties in file order; a request takes the first whose
// mfa it meets; unreachable candidates are dropped.
func TestCombination(t *testing.T) {
	const (
		fresh = 30 * time.Minute
		stale = 5 * time.Hour
		never = -1
	)
	type want struct {
		age     time.Duration
		grant   string // "" when denied
		verdict Verdict
	}
	tests := []struct {
		name   string
		grants []string
		chain  []string // the grant IDs in the order tried
		wants  []want
	}{{
		name:   "single grant",
		grants: []string{`{"src": ["group:a"], "models": ["m"], "limits": {"rpm": 10}}`},
		chain:  []string{"grants[0]"},
		wants:  []want{{never, "grants[0]", Allow}},
	}, {
		name: "higher rpm wins whatever the file order",
		grants: []string{
			`{"src": ["group:a"], "models": ["m"], "limits": {"rpm": 10}}`,
			`{"src": ["group:b"], "models": ["*"], "limits": {"rpm": 100}}`,
		},
		chain: []string{"grants[1]"},
		wants: []want{{never, "grants[1]", Allow}},
	}, {
		name: "absent limit beats any number",
		grants: []string{
			`{"src": ["group:a"], "models": ["m"], "limits": {"rpm": 1000000}}`,
			`{"src": ["alice@example.com"], "models": ["m"], "guard": {"injection": "block"}}`,
		},
		chain: []string{"grants[1]"},
		wants: []want{{fresh, "grants[1]", Allow}},
	}, {
		name: "equal rpm: tpm decides, then concurrency, tokensPerDay, maxTokens",
		grants: []string{
			`{"src": ["group:a"], "models": ["m"], "limits": {"rpm": 10, "tpm": 5, "maxTokens": 99}}`,
			`{"src": ["group:a"], "models": ["m"], "limits": {"rpm": 10, "tpm": 5, "concurrency": 2, "maxTokens": 1}}`,
			`{"src": ["group:a"], "models": ["m"], "limits": {"rpm": 10, "tpm": 5, "concurrency": 2, "tokensPerDay": 7}}`,
		},
		chain: []string{"grants[0]"},
		wants: []want{{never, "grants[0]", Allow}},
	}, {
		name: "equal limits: earlier in the file wins",
		grants: []string{
			`{"src": ["group:a"], "models": ["m"], "limits": {"rpm": 5}, "audit": {"prompts": "full"}}`,
			`{"src": ["alice@example.com"], "models": ["m"], "limits": {"rpm": 5}}`,
		},
		chain: []string{"grants[0]"},
		wants: []want{{never, "grants[0]", Allow}},
	}, {
		name: "generous grant with mfa, weaker fallback without",
		grants: []string{
			`{"src": ["group:a"], "models": ["m"], "limits": {"rpm": 30}}`,
			`{"src": ["group:a"], "models": ["m"], "mfa": "1h", "limits": {"rpm": 120}}`,
		},
		chain: []string{"grants[1]", "grants[0]"},
		wants: []want{{fresh, "grants[1]", Allow}, {stale, "grants[0]", Allow}, {never, "grants[0]", Allow}},
	}, {
		name: "fallbacks with growing mfa windows, then denial",
		grants: []string{
			`{"src": ["group:a"], "models": ["m"], "mfa": "1h", "limits": {"rpm": 100}}`,
			`{"src": ["group:a"], "models": ["m"], "mfa": "12h", "limits": {"rpm": 10}}`,
			`{"src": ["group:a"], "models": ["m"], "mfa": "30m", "limits": {"rpm": 50}}`,
		},
		chain: []string{"grants[0]", "grants[1]"}, // grants[2] is never reached: 1h already covers 30m
		wants: []want{{fresh, "grants[0]", Allow}, {stale, "grants[1]", Allow}, {13 * time.Hour, "grants[1]", DenyMFA}, {never, "grants[1]", DenyMFA}},
	}, {
		name: "a grant without mfa ends the chain",
		grants: []string{
			`{"src": ["group:a"], "models": ["m"]}`,
			`{"src": ["group:a"], "models": ["m"], "mfa": "24h", "limits": {"rpm": 1}}`,
		},
		chain: []string{"grants[0]"},
		wants: []want{{never, "grants[0]", Allow}},
	}, {
		name: "grants for other models or people do not count",
		grants: []string{
			`{"src": ["group:a"], "models": ["other"]}`,
			`{"src": ["bob@example.com"], "models": ["m"]}`,
			`{"src": ["group:a"], "dst": ["tag:gpu:22"]}`,
		},
		chain: nil,
		wants: []want{{fresh, "", Deny}},
	}}
	alice := Identity{Login: "Alice@Example.com", Groups: []string{"b"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := combinePolicy(t, tt.grants...)
			e, err := p.Explain(alice, "model:m")
			if err != nil {
				t.Fatal(err)
			}
			if got := grantIDs(e.Chain); got != strings.Join(tt.chain, " ") {
				t.Errorf("chain = %q, want %q\n%s", got, strings.Join(tt.chain, " "), e)
			}
			table := guardTableFor(t, p, alice)
			for _, w := range tt.wants {
				g, v := table.Decide("alice-laptop", "m", w.age, "")
				got := ""
				if g != nil {
					got = g.ID
				}
				if got != w.grant || v != w.verdict {
					t.Errorf("Decide(age %v) = %q %v, want %q %v", w.age, got, v, w.grant, w.verdict)
				}
			}
		})
	}
}

func grantIDs(gs []*Grant) string {
	ids := make([]string, len(gs))
	for i, g := range gs {
		ids[i] = g.ID()
	}
	return strings.Join(ids, " ")
}

// guardTableFor compiles p for one device of who and one node, and builds
// the node's guard table.
func guardTableFor(t *testing.T, p *Policy, who Identity) *GuardTable {
	t.Helper()
	c, err := p.Compile([]Member{
		{ID: "alice-laptop", Identity: who, Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.2")}},
		{ID: "gpu-1", Identity: Identity{Tags: []string{"tag:gpu"}}, Models: []string{"m", "other"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	table, err := c.Member("gpu-1").GuardTable()
	if err != nil {
		t.Fatal(err)
	}
	return table
}

func TestGuardTableRefusesBadIndex(t *testing.T) {
	_, err := NewGuardTable(&NodeRules{Grants: []GrantRule{{ID: "grants[0]"}}},
		map[string][]ModelAccess{"d": {{Model: "m", Grant: 1}}})
	if err == nil || !strings.Contains(err.Error(), "grant 1 does not exist") {
		t.Fatalf("err = %v", err)
	}
}

func TestGuardTableUnknownCallerAndNil(t *testing.T) {
	table, err := NewGuardTable(&NodeRules{Grants: []GrantRule{{ID: "grants[0]"}}},
		map[string][]ModelAccess{"d": {{Model: "m", Grant: 0}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct{ caller, model string }{{"x", "m"}, {"d", "n"}, {"", ""}} {
		if g, v := table.Decide(q.caller, q.model, 0, ""); g != nil || v != Deny {
			t.Errorf("Decide(%q, %q) = %v, %v; want deny", q.caller, q.model, g, v)
		}
	}
	if g, v := (*GuardTable)(nil).Decide("d", "m", 0, ""); g != nil || v != Deny {
		t.Errorf("nil table allowed: %v %v", g, v)
	}
	if _, v := table.Decide("d", "m", -1, ""); v != Allow {
		t.Errorf("grant without mfa refused a caller who never did MFA: %v", v)
	}
}

func TestCompareGenerosityIsTotal(t *testing.T) {
	ls := []Limits{{}, {RPM: 1}, {RPM: 2}, {TPM: 1}, {RPM: 1, TPM: 1}, {Concurrency: 3}, {TokensPerDay: 9}, {MaxTokens: 4}}
	for _, a := range ls {
		for _, b := range ls {
			ab, ba := compareGenerosity(a, b), compareGenerosity(b, a)
			if ab != -ba || (ab == 0) != (fmt.Sprint(a) == fmt.Sprint(b)) {
				t.Errorf("compare(%+v, %+v) = %d, reverse %d", a, b, ab, ba)
			}
		}
	}
}
