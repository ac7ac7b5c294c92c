package auditchain

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// chain seals n records and returns their lines.
func chain(n int) [][]byte {
	var out [][]byte
	prev := ""
	for i := 1; i <= n; i++ {
		var buf bytes.Buffer
		prev = Seal(&buf, fmt.Appendf(nil, `{"seq":%d,"tokensIn":2,"prev":%q}`, i, prev))
		out = append(out, buf.Bytes())
	}
	return out
}

func TestChain(t *testing.T) {
	lines := chain(3)
	var prev Link
	for i, line := range lines {
		l, err := OpenLink(line)
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if err := Follows(prev, l); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		prev = l
	}
	first, _ := OpenLink(lines[0])
	third, _ := OpenLink(lines[2])
	if err := Follows(first, third); !errors.Is(err, ErrBroken) {
		t.Errorf("a removed record: %v, want ErrBroken", err)
	}
	if err := Follows(Link{}, third); !errors.Is(err, ErrBroken) {
		t.Errorf("a chain not starting at 1: %v, want ErrBroken", err)
	}
	for name, line := range map[string]string{
		"edited":    strings.Replace(string(lines[1]), `"tokensIn":2`, `"tokensIn":9`, 1),
		"no hash":   `{"seq":1,"prev":""}`,
		"short":     `{"hash":"abc",`,
		"bad json":  string(bytes.Replace(lines[0], []byte(`"seq":1`), []byte(`"seq":"x"`), 1)),
		"hash only": `{"hash":"` + strings.Repeat("0", 64) + `",}`,
	} {
		if _, err := OpenLink([]byte(line)); !errors.Is(err, ErrBroken) {
			t.Errorf("%s: %v, want ErrBroken", name, err)
		}
	}
}

// TestMerge: spans of deleted records join when they follow each other,
// whatever order they come in; a span inside another adds nothing; spans
// that do not chain (a record edited or forked before the cut) stay
// apart so the break stays visible.
func TestMerge(t *testing.T) {
	var links []Link
	for _, line := range chain(6) {
		l, err := OpenLink(line)
		if err != nil {
			t.Fatal(err)
		}
		links = append(links, l)
	}
	span := func(i int) Span { return SpanOf(links[i-1]) }
	show := func(ss []Span) string {
		var b strings.Builder
		for _, s := range ss {
			fmt.Fprintf(&b, "[%d-%d]", s.First, s.Last)
		}
		return b.String()
	}
	joined := Merge([]Span{span(3), span(1), span(2)})
	if got := show(joined); got != "[1-3]" {
		t.Fatalf("merge 3,1,2: %s, want [1-3]", got)
	}
	if joined[0].Prev != "" || joined[0].Head != links[2].Hash {
		t.Fatalf("merged span %+v: want prev \"\" and the third record's head", joined[0])
	}
	if err := Follows(joined[0].End(), links[3]); err != nil {
		t.Fatalf("record 4 after the span: %v", err)
	}
	if got := show(Merge([]Span{joined[0], span(2), span(5)})); got != "[1-3][5-5]" {
		t.Fatalf("a covered span and a gap: %s, want [1-3][5-5]", got)
	}
	forged := span(4)
	forged.Prev = strings.Repeat("0", 64)
	if got := show(Merge([]Span{joined[0], forged, span(5)})); got != "[1-3][4-5]" {
		t.Fatalf("a span that does not chain: %s, want [1-3][4-5]", got)
	}
}
