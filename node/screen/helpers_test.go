package screen

import (
	"testing"

	"github.com/moatmesh/moat/policy"
)

// allOn returns actions that enable every rule with a.
func allOn(a Action) RuleActions {
	ra := RuleActions{}
	for _, r := range Rules() {
		ra[r.ID] = a
	}
	return ra
}

func mustScanner(t testing.TB, ra RuleActions, allow ...string) *Scanner {
	t.Helper()
	s, err := NewScanner(ra, allow)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// split cuts s into n nearly equal pieces.
func split(s string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, s[i*len(s)/n:(i+1)*len(s)/n])
	}
	return out
}

func guardAll() policy.Guard {
	return policy.Guard{Injection: "block", Redact: []string{"secrets", "pii"}, Links: "block-external"}
}
