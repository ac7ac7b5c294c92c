package policy

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to Parse. It must never panic; every error
// must carry a position inside the input; a policy it accepts must test,
// explain and compile without panicking.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.hujson")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"groups": {"group:a": ["group:a"]}}`))
	f.Add([]byte(`{"grants": [{"src": ["*"], "dst": ["tag:x:1-2"]}], "grants": []}`))
	f.Add([]byte("{\n// comment\n\"models\": {\"m\": {\"servedBy\": [\"tag:t\"], /* x */}},}"))
	f.Add([]byte(`{"budgets": {"currency": "EUR", "prices": {"m": {"input": 0.5, "output": 1}}, "limits": [{"for": "grants[0]", "each": true, "per": "week", "money": {"warn": 1, "limit": 2.5}}]}}`))
	f.Add([]byte(factorPolicy))
	f.Add([]byte(`{"tagOwners": {"tag:gpu": []}, "models": {"m": {"servedBy": ["tag:gpu"], "encryptedAtRest": true}, "n": {"servedBy": ["tag:gpu"], "encryptedAtRest": 1}}}`))
	f.Add([]byte(`{"grants": [{"src": ["autogroup:member"], "models": ["*"], "mfa": {"within": "1h", "deviceBound": true, "phishingResistant": 1}}]}`))
	members := []Member{
		{ID: "d", Identity: Identity{Login: "alice@example.com", Groups: []string{"ml-research"}}, Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.1")}},
		{ID: "n", Identity: Identity{Tags: []string{"tag:gpu"}}, Models: []string{"llama-3.1-70b", "m"}},
		{ID: "t", Identity: Identity{Tags: []string{"tag:tools"}}, MCP: []string{"jira", "m"}},
	}
	f.Add([]byte(`{"tagOwners": {"tag:tools": []}, "mcp": {"jira": {"servedBy": ["tag:tools"], "egress": ["jira.corp.example:443", "10.2.0.0/16", "2001:db8::1"]}}, "grants": [{"src": ["tag:tools"], "mcp": ["jira:*"]}]}`))
	f.Add([]byte(`{"tagOwners": {"tag:tools": []}, "mcp": {"jira": {"servedBy": ["tag:tools"]}}, "grants": [{"src": ["tag:tools"], "mcp": ["jira:a*b*"]}], "tests": [{"src": "tag:tools", "accept": ["mcp:jira:ab"]}]}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse("fuzz.hujson", src)
		if err != nil {
			checkPositioned(t, src, err)
			return
		}
		if err := p.RunTests(); err != nil {
			checkPositioned(t, src, err)
		}
		checkBudgets(t, p)
		if _, err := p.Compile(members); err != nil {
			t.Fatalf("Compile: %v", err)
		}
		for _, m := range p.Models {
			for _, method := range []string{"", "otp", "swk", "hwk"} {
				if _, err := p.Explain(Identity{Login: "alice@example.com", MFAMethod: method}, "model:"+m.Name); err != nil {
					t.Fatalf("Explain(model:%s) after a sign-in by %q: %v", m.Name, method, err)
				}
			}
		}
		for _, s := range p.MCP {
			if _, err := p.Explain(Identity{Login: "alice@example.com"}, "mcp:"+s.Name+":search_issues"); err != nil {
				t.Fatalf("Explain(mcp:%s): %v", s.Name, err)
			}
		}
	})
}

func checkPositioned(t *testing.T, src []byte, err error) {
	t.Helper()
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error is not an ErrorList: %v", err)
	}
	lines := bytes.Count(src, []byte("\n")) + 1
	for _, e := range list {
		if e.File != "fuzz.hujson" || e.Line < 1 || e.Line > lines || e.Col < 1 || e.Msg == "" {
			t.Fatalf("badly positioned error %+v in %d lines", e, lines)
		}
	}
}

// checkBudgets checks what an accepted policy promises of its budgets.
func checkBudgets(t *testing.T, p *Policy) {
	for i := range p.Budgets.Limits {
		b := &p.Budgets.Limits[i]
		if b.For == "" || b.Per == "" || (b.Unit != UnitTokens && b.Unit != UnitMoney) || b.Threshold() <= 0 || (b.Limit > 0 && b.Warn >= b.Limit) {
			t.Fatalf("accepted a budget that cannot count: %+v", b)
		}
		if b.Unit == UnitMoney && p.Budgets.Currency == "" {
			t.Fatalf("accepted a money budget without a currency: %+v", b)
		}
		_ = p.Budgets.Describe(b)
	}
	for name, pr := range p.Budgets.Prices {
		if pr.Input < 0 || pr.Output < 0 || pr.Input > MaxPrice || pr.Output > MaxPrice {
			t.Fatalf("accepted price %+v for %s", pr, name)
		}
	}
}
