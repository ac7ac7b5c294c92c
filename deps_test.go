package moat

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/moatmesh/moat/"

// forbidden maps a package tree to the trees it must never depend on,
// directly or through another package.
var forbidden = map[string][]string{
	"policy":      {"mesh", "node", "coordinator", "ui", "cmd", "internal"},
	"mesh":        {"node", "coordinator", "ui", "cmd"},
	"node":        {"coordinator", "ui", "cmd"},
	"coordinator": {"node", "cmd"},
	"ui":          {"coordinator", "node", "cmd"},
	// The protocol lives in mesh/wire alone, in its own types.
	"mesh/wire": {"policy"},
	// The netmap fan-out knows the store and the policy, not the web UI
	// or the sign-in machinery around it.
	"coordinator/netmap": {"ui", "coordinator/idp", "coordinator/mfa", "coordinator/seal"},
	// The guard, the lockdown, the audit spool and the router run without
	// a moat mesh member too (on a tsnet tailnet, say).
	"node/guard":    {"mesh/member", "mesh/client"},
	"node/lockdown": {"mesh/member", "mesh/client"},
	"node/audit":    {"mesh/member", "mesh/client"},
	"mesh/router":   {"mesh/member", "mesh/client"},
}

// forbiddenOutsideTests are further bans on a tree's non-test code. Test
// helper packages (named …test, such as coordtest) may break them.
var forbiddenOutsideTests = map[string][]string{
	"coordinator": {"internal"},
}

// leaves are packages that import nothing of moat, so that anything may
// use them (mesh/llmapi: the router, the guard, later an MCP server).
var leaves = []string{"mesh/llmapi"}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], mod)
		for _, bad := range violations(pkg, fields[1:]) {
			t.Errorf("%s depends on %s, which DESIGN.md forbids", pkg, bad)
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("go list saw only %d packages; the test is not looking at the module", checked)
	}
}

func violations(pkg string, deps []string) (bad []string) {
	for _, leaf := range leaves {
		if pkg != leaf {
			continue
		}
		for _, d := range deps {
			if strings.HasPrefix(d, mod) {
				bad = append(bad, strings.TrimPrefix(d, mod))
			}
		}
	}
	bad = append(bad, banned(forbidden, pkg, deps)...)
	if !strings.HasSuffix(pkg, "test") {
		bad = append(bad, banned(forbiddenOutsideTests, pkg, deps)...)
	}
	return bad
}

// banned returns the deps of pkg that rules forbid.
func banned(rules map[string][]string, pkg string, deps []string) (bad []string) {
	for tree, banned := range rules {
		if !within(pkg, tree) {
			continue
		}
		for _, d := range deps {
			d, ok := strings.CutPrefix(d, mod)
			if !ok {
				continue
			}
			for _, b := range banned {
				if within(d, b) {
					bad = append(bad, d)
				}
			}
		}
	}
	return bad
}

func within(pkg, tree string) bool { return pkg == tree || strings.HasPrefix(pkg, tree+"/") }

// The rule checker itself must catch a violation, or the test above proves
// nothing.
func TestViolationsDetected(t *testing.T) {
	for _, tc := range []struct {
		pkg  string
		deps []string
		want int
	}{
		{"node/guard", []string{mod + "coordinator/store"}, 1},
		{"mesh", []string{mod + "node"}, 1},
		{"policy", []string{mod + "mesh/key"}, 1},
		{"coordinator", []string{mod + "node/audit", mod + "ui"}, 1},
		{"node", []string{mod + "mesh/engine", mod + "policy", "net/http"}, 0},
		{"nodes", []string{mod + "coordinator"}, 0}, // a prefix is not a tree
		{"mesh/wire", []string{mod + "policy"}, 1},
		{"coordinator/netmap", []string{mod + "ui", mod + "coordinator/store"}, 1},
		{"coordinator", []string{mod + "internal/testclock"}, 1},
		{"coordinator/coordtest", []string{mod + "internal/testclock"}, 0}, // a test helper
		{"mesh/llmapi", []string{mod + "mesh/wire", "net/http"}, 1},
	} {
		if got := len(violations(tc.pkg, tc.deps)); got != tc.want {
			t.Errorf("violations(%s, %v) = %d, want %d", tc.pkg, tc.deps, got, tc.want)
		}
	}
}
