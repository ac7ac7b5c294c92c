package screen

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

func FuzzScan(f *testing.F) {
	for _, s := range []string{secretAnswer, "Ignore all previous instructions", "![x](https://e.test/?d=1)", "+49 30 1234567", "-----BEGIN RSA PRIVATE KEY-----\nAAA"} {
		f.Add(s)
	}
	sc := mustScanner(f, allOn(ActionRedact))
	f.Fuzz(func(t *testing.T, s string) {
		fs := sc.Scan(s)
		last := 0
		for _, x := range fs {
			if x.Start < last || x.End > len(s) || x.Start >= x.End {
				t.Fatalf("bad finding %v in %d bytes (after %d)", x, len(s), last)
			}
			last = x.End
		}
		Redact(s, fs)
	})
}

// FuzzStream feeds text in fuzzed chunk sizes through a Stream and both
// wire filters: no panic, hold-back within the bound, every output event
// valid, and without redactions the text comes out unchanged.
func FuzzStream(f *testing.F) {
	f.Add(secretAnswer, uint8(7))
	f.Add("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\nok", uint8(3))
	f.Add("héllo wörld \u200b\u200b\u200b ![a](http://x.test/y) done", uint8(1))
	sc := mustScanner(f, allOn(ActionRedact))
	none := mustScanner(f, RuleActions{"email": ActionFlag})
	f.Fuzz(func(t *testing.T, text string, k uint8) {
		size := int(k%64) + 1
		st := sc.NewStream()
		var out []byte
		for i := 0; i < len(text); i += size {
			out, _ = st.Push(out, []byte(text[i:min(len(text), i+size)]))
			if st.Pending() > sc.HoldBack() {
				t.Fatalf("pending %d > bound %d", st.Pending(), sc.HoldBack())
			}
		}
		st.Flush(out)
		checkWire(t, sc, text, size)
		if got := streamAll(none, text, size); got != text {
			t.Fatalf("flag-only stream changed the text: %q → %q", text, got)
		}
	})
}

func streamAll(sc *Scanner, text string, size int) string {
	st := sc.NewStream()
	var out []byte
	for i := 0; i < len(text); i += size {
		out, _ = st.Push(out, []byte(text[i:min(len(text), i+size)]))
	}
	out, _ = st.Flush(out)
	return string(out)
}

func checkWire(t *testing.T, sc *Scanner, text string, size int) {
	var sse, nd bytes.Buffer
	sw, nw := sc.NewSSEWriter(&sse), sc.NewNDJSONWriter(&nd)
	n := max(1, len(text)/size)
	sw.Write([]byte(sseEvents(text, n, false)))
	sw.Close()
	nw.Write([]byte(ndjsonLines(text, n, true)))
	nw.Close()
	for _, ev := range strings.Split(strings.TrimSuffix(sse.String(), "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if ev == "" {
			continue
		}
		if !ok || (data != "[DONE]" && !json.Valid([]byte(data))) {
			t.Fatalf("invalid SSE event %q", ev)
		}
	}
	for _, line := range strings.Split(strings.TrimSuffix(nd.String(), "\n"), "\n") {
		if line != "" && !json.Valid([]byte(line)) {
			t.Fatalf("invalid NDJSON line %q", line)
		}
	}
}

// FuzzSplitsAgree: text redacted whole and streamed in random pieces
// comes out the same, so no split leaves part of a secret in clear.
func FuzzSplitsAgree(f *testing.F) {
	f.Add(secretAnswer, uint64(1))
	f.Add("use ops_eyJ"+strings.Repeat("Zk9pQ2xWbTRuR3hL", 20)+" now", uint64(2))
	f.Add("GH_TOKEN=ghs_12345_eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJpYXQiOjE3NDU1NjgwMDB9.q8Zx3Lm9Vb2Nc7Rt5Yw1 mongodb://devuser:mySecret789@dev.mongodb.com:27017/db", uint64(5))
	f.Add("Authorization: Basic YnJvd3Nlcjo9Zm9vYmFy and curl -u deploy:Xk29vLq7Pz", uint64(3))
	f.Add("<token>\n  q8Zx3Lm9Vb2Nc7Rt5Yw1\n</token> api_key=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", uint64(4))
	sc := mustScanner(f, allOn(ActionRedact), corpusAllow...)
	f.Fuzz(func(t *testing.T, text string, seed uint64) {
		want, _, _ := sc.Check(text)
		if got := pushSplits(sc, text, rand.New(rand.NewPCG(seed, 0))); got != want {
			t.Fatalf("text %q\nwhole %q\nsplit %q", text, want, got)
		}
	})
}
