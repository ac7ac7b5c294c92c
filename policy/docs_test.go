package policy

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// docBlocks returns the fenced code blocks of docs/policy.md written in
// the given language, with the line each starts on.
func docBlocks(t *testing.T, lang string) (blocks []string, lines []int) {
	t.Helper()
	doc, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	var cur *strings.Builder
	for i, line := range strings.Split(string(doc), "\n") {
		switch {
		case cur == nil && line == "```"+lang:
			cur = &strings.Builder{}
			lines = append(lines, i+2)
		case cur != nil && line == "```":
			blocks = append(blocks, cur.String())
			cur = nil
		case cur != nil:
			cur.WriteString(line + "\n")
		}
	}
	return blocks, lines
}

// TestDocExamples checks that every ```hujson example in docs/policy.md
// is a valid policy whose tests pass.
func TestDocExamples(t *testing.T) {
	blocks, lines := docBlocks(t, "hujson")
	if len(blocks) < 4 {
		t.Fatalf("found %d hujson examples in docs/policy.md; the extraction is broken", len(blocks))
	}
	for i, b := range blocks {
		if _, err := Check("policy.hujson", []byte(b)); err != nil {
			t.Errorf("docs/policy.md example at line %d is refused:\n%v", lines[i], err)
		}
	}
}

// TestDocExplainOutput checks that the `policy explain` output shown in
// docs/policy.md is what the complete example really produces.
func TestDocExplainOutput(t *testing.T) {
	examples, _ := docBlocks(t, "hujson")
	texts, _ := docBlocks(t, "text")
	p, err := Check("policy.hujson", []byte(examples[0]))
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.Explain(Identity{Login: "bob@example.com"}, "model:llama-3.1-70b")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(texts[0], e.String()) {
		t.Errorf("docs/policy.md shows an outdated explanation; it should read:\n%s", e)
	}
	assertions := 0
	for _, tt := range p.Tests {
		assertions += len(tt.Accept) + len(tt.Deny)
	}
	if !strings.Contains(texts[0], "policy.hujson: ok: 2 models, 3 grants; 4 tests ("+strconv.Itoa(assertions)+" assertions) pass") {
		t.Errorf("docs/policy.md shows a wrong check summary; the example has %d assertions", assertions)
	}
}
