package screen

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestJSONQuoteRoundTrip: appendQuote writes what encoding/json reads back,
// and appendUnquote reads what encoding/json writes, over random strings
// of plain runs, escapes, controls and multi-byte runes.
func TestJSONQuoteRoundTrip(t *testing.T) {
	pieces := []string{"plain text ", `"`, `\`, "\n", "\t", "\r", "\x01", "\x1f", "/", "é", "日本", "😀", "\u2028", "<>&", "abc"}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var b strings.Builder
		for range rnd.IntN(12) {
			b.WriteString(pieces[rnd.IntN(len(pieces))])
		}
		s := b.String()
		var back string
		if q := appendQuote(nil, []byte(s)); json.Unmarshal(q, &back) != nil || back != s {
			t.Fatalf("appendQuote(%q) = %s, read back %q", s, q, back)
		}
		q, _ := json.Marshal(s)
		if got := appendUnquote(nil, q); string(got) != s {
			t.Fatalf("appendUnquote(%s) = %q, want %q", q, got, s)
		}
	}
	if got := appendQuote(nil, []byte("a\xffb")); string(got) != `"a\ufffdb"` {
		t.Fatalf("invalid UTF-8: %s", got)
	}
}
