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
