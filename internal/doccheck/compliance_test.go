package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// testRef is how docs/compliance.md names a test: `pkg/path.TestName`,
// the package by its directory in the module.
var testRef = regexp.MustCompile("`((?:[a-z0-9_]+/)*[a-z0-9_]+)\\.(Test[A-Za-z0-9_]+)`")

// missingTests returns the references in doc to tests that do not exist
// under root, and the table rows (other than headers) that name none.
func missingTests(t *testing.T, root, doc string) (missing, bare []string) {
	t.Helper()
	for _, m := range testRef.FindAllStringSubmatch(doc, -1) {
		if !hasTest(t, filepath.Join(root, m[1]), m[2]) {
			missing = append(missing, m[1]+"."+m[2])
		}
	}
	lines := strings.Split(doc, "\n")
	for i, l := range lines {
		header := i+1 < len(lines) && strings.HasPrefix(lines[i+1], "|---")
		if strings.HasPrefix(l, "|") && !strings.HasPrefix(l, "|---") && !header && !testRef.MatchString(l) {
			bare = append(bare, l)
		}
	}
	return missing, bare
}

// hasTest reports whether a _test.go file in dir declares func name.
func hasTest(t *testing.T, dir, name string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`(?m)^func ` + name + `\(t \*testing\.T\)`)
	return slices.ContainsFunc(files, func(f string) bool {
		b, err := os.ReadFile(f)
		return err == nil && decl.Match(b)
	})
}

// TestComplianceNamesRealTests: every test docs/compliance.md cites
// exists, and every control row cites at least one.
func TestComplianceNamesRealTests(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "compliance.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(testRef.FindAllString(string(doc), -1)); n < 40 {
		t.Fatalf("docs/compliance.md names %d tests; the map should name one per control (is the `pkg.TestName` form still used?)", n)
	}
	missing, bare := missingTests(t, root, string(doc))
	for _, m := range missing {
		t.Errorf("docs/compliance.md names %s, which does not exist", m)
	}
	for _, row := range bare {
		t.Errorf("docs/compliance.md: a row names no test: %s", row)
	}
}

// TestComplianceCheckRefuses: the check finds a test that does not exist
// and a row without one.
func TestComplianceCheckRefuses(t *testing.T) {
	doc := "| control | proof |\n|---|---|\n| a | `internal/doccheck.TestComplianceNamesRealTests` |\n| b | `internal/doccheck.TestNoSuchTest` |\n| c | nothing |\n"
	missing, bare := missingTests(t, filepath.Join("..", ".."), doc)
	if len(missing) != 1 || missing[0] != "internal/doccheck.TestNoSuchTest" {
		t.Errorf("missing = %v, want the one that does not exist", missing)
	}
	if len(bare) != 1 || !strings.HasPrefix(bare[0], "| c ") {
		t.Errorf("rows without a test = %v, want row c", bare)
	}
}
