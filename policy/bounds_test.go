package policy

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// chainPolicy is a policy whose groups nest depth deep, with tests tests.
func chainPolicy(depth, tests int) string {
	var b strings.Builder
	b.WriteString(`{"groups": {`)
	for i := range depth {
		fmt.Fprintf(&b, "\"group:g%d\": [\"group:g%d\"],\n", i, i+1)
	}
	fmt.Fprintf(&b, "\"group:g%d\": [\"alice@example.com\"]},\n", depth)
	b.WriteString(`"tagOwners": {"tag:gpu": []}, "models": {"m": {"servedBy": ["tag:gpu"]}},`)
	b.WriteString(`"grants": [{"src": ["group:g0"], "models": ["m"]}], "tests": [`)
	for range tests {
		b.WriteString(`{"src": "alice@example.com", "accept": ["model:m"]},`)
	}
	b.WriteString("]}")
	return b.String()
}

// within fails the test when f takes longer than d: these inputs were
// built to make an unbounded checker spin.
func within(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("not done within %s", d)
	}
}

func TestBoundsRefuseOversizedPolicies(t *testing.T) {
	for _, tc := range []struct {
		name, src, want string
	}{
		{"deep groups", chainPolicy(2000, 1), "groups nest more than 8 deep: group:g0 → group:g1"},
		{"too many tests", chainPolicy(1, MaxTests+1), `"tests" holds 1001 tests`},
		{"too large", chainPolicy(1, 1) + strings.Repeat(" ", MaxSize), "the most accepted is 524288"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			within(t, 5*time.Second, func() {
				_, err := Check("p.hujson", []byte(tc.src))
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Check: %v, want an error with %q", err, tc.want)
				}
			})
		})
	}
	// At the bounds, the policy is accepted.
	if _, err := Check("p.hujson", []byte(chainPolicy(MaxGroupDepth-1, MaxTests))); err != nil {
		t.Fatalf("depth %d with %d tests: %v", MaxGroupDepth, MaxTests, err)
	}
}

// Groups that all hold every group of the next level have a number of
// paths exponential in the depth; each group's members are gathered once.
func TestWideGroupNestingIsLinear(t *testing.T) {
	const levels, width = MaxGroupDepth, 30
	var b strings.Builder
	b.WriteString(`{"groups": {`)
	for l := range levels {
		for w := range width {
			fmt.Fprintf(&b, `"group:l%dw%d": [`, l, w)
			if l == levels-1 {
				fmt.Fprintf(&b, `"u%d@example.com"`, w)
			}
			for n := range width {
				if l < levels-1 {
					fmt.Fprintf(&b, `"group:l%dw%d",`, l+1, n)
				}
			}
			b.WriteString("],\n")
		}
	}
	b.WriteString(`}, "tagOwners": {"tag:gpu": []}, "grants": [{"src": ["group:l0w0"], "dst": ["tag:gpu:22"]}]}`)
	if len(b.String()) > MaxSize {
		t.Fatalf("the test policy is %d bytes, over MaxSize", b.Len())
	}
	within(t, 10*time.Second, func() {
		p, err := Parse("p.hujson", []byte(b.String()))
		if err != nil {
			t.Error(err)
			return
		}
		if got := p.groupsOf["u0@example.com"]; len(got) != (levels-1)*width+1 {
			t.Errorf("u0 is in %d groups, want %d", len(got), (levels-1)*width+1)
		}
	})
}
