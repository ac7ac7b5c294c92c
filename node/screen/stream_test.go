package screen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

const secretAnswer = "Sure. Use key AKIAQ3EGRT5NBX7KLM2P with token ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5 and mail bob.jones@example.org. Done."

func TestStreamSplits(t *testing.T) {
	sc := mustScanner(t, allOn(ActionRedact))
	want := Redact(secretAnswer, sc.Scan(secretAnswer))
	for _, n := range []int{1, 2, 3, 10, len(secretAnswer)} {
		st := sc.NewStream()
		var out []byte
		var err error
		for _, c := range split(secretAnswer, n) {
			if out, err = st.Push(out, []byte(c)); err != nil {
				t.Fatal(err)
			}
			if st.Pending() > sc.HoldBack() {
				t.Fatalf("pending %d > hold-back %d", st.Pending(), sc.HoldBack())
			}
		}
		out, _ = st.Flush(out)
		if string(out) != want {
			t.Errorf("%d chunks:\n got %q\nwant %q", n, out, want)
		}
	}
}

func TestStreamReleasesEarly(t *testing.T) {
	sc := mustScanner(t, allOn(ActionRedact))
	st := sc.NewStream()
	text := strings.Repeat("plain words flow through. ", 40)
	out, _ := st.Push(nil, []byte(text))
	if len(text)-len(out) > sc.HoldBack() {
		t.Fatalf("held back %d bytes, bound %d", len(text)-len(out), sc.HoldBack())
	}
}

func TestStreamLongSecrets(t *testing.T) {
	sc := mustScanner(t, allOn(ActionRedact))
	pem := "-----BEGIN RSA PRIVATE KEY-----\n" + strings.Repeat("MIIEowIBAAKCAQEAx7s9d2Kq+/PdR3m8nB4vT6yU1wZ0aLc5eF9gH2jK3lM4nO5pQ7r\n", 12) + "-----END RSA PRIVATE KEY-----\n"
	jwt := "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ" + strings.Repeat("zdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6", 12) + ".sig_" + strings.Repeat("Ab3", 40)
	for name, secret := range map[string]string{"pem": pem, "jwt": jwt} {
		text := "here:\n" + secret + " and after"
		for _, n := range []int{2, 3, 10, 60} {
			st := sc.NewStream()
			var out []byte
			for _, c := range split(text, n) {
				out, _ = st.Push(out, []byte(c))
			}
			out, _ = st.Flush(out)
			if bytes.Contains(out, []byte("MIIEowIBAAKCAQEA")) || bytes.Contains(out, []byte("zdWIiOiIxMjM0")) || bytes.Contains(out, []byte("Ab3Ab3")) {
				t.Errorf("%s in %d chunks leaked: %q", name, n, out)
			}
			if !bytes.HasSuffix(out, []byte(" and after")) {
				t.Errorf("%s in %d chunks lost the text after it: %q", name, n, out)
			}
		}
	}
}

// sseEvents renders text as chat.completion.chunk events cut into n pieces.
func sseEvents(text string, n int, completions bool) string {
	var b strings.Builder
	for _, c := range split(text, n) {
		q, _ := json.Marshal(c)
		if completions {
			b.WriteString(`data: {"id":"cmpl-1","object":"text_completion","choices":[{"text":` + string(q) + `,"index":0,"finish_reason":null}]}` + "\n\n")
		} else {
			b.WriteString(`data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":` + string(q) + `},"finish_reason":null}]}` + "\n\n")
		}
	}
	b.WriteString(`data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n")
	return b.String()
}

func ndjsonLines(text string, n int, generate bool) string {
	var b strings.Builder
	for _, c := range split(text, n) {
		q, _ := json.Marshal(c)
		if generate {
			b.WriteString(`{"model":"m","response":` + string(q) + `,"done":false}` + "\n")
		} else {
			b.WriteString(`{"model":"m","message":{"role":"assistant","content":` + string(q) + `},"done":false}` + "\n")
		}
	}
	if generate {
		b.WriteString(`{"model":"m","response":"","done":true,"eval_count":9}` + "\n")
	} else {
		b.WriteString(`{"model":"m","message":{"role":"assistant","content":""},"done":true}` + "\n")
	}
	return b.String()
}

// collectSSE checks every event is valid and returns the joined text.
func collectSSE(t *testing.T, out string) string {
	t.Helper()
	if !strings.HasSuffix(out, "data: [DONE]\n\n") {
		t.Fatalf("stream does not end with [DONE]: %q", out)
	}
	var text strings.Builder
	for _, ev := range strings.Split(strings.TrimSuffix(out, "\n\n"), "\n\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok || strings.Contains(data, "\n") {
			t.Fatalf("bad event %q", ev)
		}
		if data == "[DONE]" {
			continue
		}
		var v struct {
			Choices []struct {
				Text  *string
				Delta struct{ Content *string }
			}
		}
		if err := json.Unmarshal([]byte(data), &v); err != nil {
			t.Fatalf("event is not JSON: %q: %v", data, err)
		}
		for _, c := range v.Choices {
			if c.Delta.Content != nil {
				text.WriteString(*c.Delta.Content)
			}
			if c.Text != nil {
				text.WriteString(*c.Text)
			}
		}
	}
	return text.String()
}

func collectNDJSON(t *testing.T, out string) string {
	t.Helper()
	var text strings.Builder
	sc := bufio.NewScanner(strings.NewReader(out))
	last := false
	for sc.Scan() {
		var v struct {
			Response string
			Message  struct{ Content string }
			Done     bool
		}
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line is not JSON: %q: %v", sc.Text(), err)
		}
		text.WriteString(v.Response + v.Message.Content)
		last = v.Done
	}
	if !last {
		t.Fatalf("done line is not last: %q", out)
	}
	return text.String()
}

func TestWireFormatsSplitSecret(t *testing.T) {
	sc := mustScanner(t, allOn(ActionRedact))
	want := Redact(secretAnswer, sc.Scan(secretAnswer))
	for _, n := range []int{2, 3, 10} {
		for _, variant := range []bool{false, true} {
			var sse, nd bytes.Buffer
			run(t, sc.NewSSEWriter(&sse), sseEvents(secretAnswer, n, variant), 7)
			if got := collectSSE(t, sse.String()); got != want {
				t.Errorf("SSE %d chunks (completions=%v):\n got %q\nwant %q", n, variant, got, want)
			}
			run(t, sc.NewNDJSONWriter(&nd), ndjsonLines(secretAnswer, n, variant), 5)
			if got := collectNDJSON(t, nd.String()); got != want {
				t.Errorf("NDJSON %d chunks (generate=%v):\n got %q\nwant %q", n, variant, got, want)
			}
		}
	}
}

// run writes upstream into w in pieces of size k and closes it.
func run(t *testing.T, w *EventWriter, upstream string, k int) {
	t.Helper()
	for i := 0; i < len(upstream); i += k {
		if _, err := w.Write([]byte(upstream[i:min(len(upstream), i+k)])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestWireFormatsBlock(t *testing.T) {
	sc := mustScanner(t, RuleActions{"aws-access-key": ActionBlock})
	var sse bytes.Buffer
	w := sc.NewSSEWriter(&sse)
	_, err := w.Write([]byte(sseEvents(secretAnswer, 10, false)))
	var be *BlockError
	if !errors.As(err, &be) || be.Rule != "aws-access-key" {
		t.Fatalf("SSE block: %v", err)
	}
	out := sse.String()
	if strings.Contains(out, "AKIA") || !strings.Contains(out, `"code":"aws-access-key"`) || !strings.HasSuffix(out, "data: [DONE]\n\n") {
		t.Fatalf("SSE block output: %q", out)
	}
	collectSSE(t, out)
	var nd bytes.Buffer
	_, err = sc.NewNDJSONWriter(&nd).Write([]byte(ndjsonLines(secretAnswer, 3, false)))
	if !errors.As(err, &be) || strings.Contains(nd.String(), "AKIA") || !strings.Contains(nd.String(), `{"error":`) {
		t.Fatalf("NDJSON block: %v %q", err, nd.String())
	}
}

func TestWireFormatsMalformed(t *testing.T) {
	sc := mustScanner(t, allOn(ActionRedact))
	var out bytes.Buffer
	_, err := sc.NewSSEWriter(&out).Write([]byte("data: {\"choices\": [\n\n"))
	if !errors.Is(err, ErrMalformedEvent) {
		t.Fatalf("malformed SSE: %v", err)
	}
	_, err = sc.NewNDJSONWriter(&out).Write([]byte("not json\n"))
	if !errors.Is(err, ErrMalformedEvent) {
		t.Fatalf("malformed NDJSON: %v", err)
	}
	w := sc.NewNDJSONWriter(&out)
	if _, err = w.Write(bytes.Repeat([]byte("x"), MaxEventSize+1)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("oversized event: %v", err)
	}
	// Comments and keep-alives pass unchanged.
	out.Reset()
	run(t, sc.NewSSEWriter(&out), ": ping\n\n", 3)
	if out.String() != ": ping\n\n" {
		t.Fatalf("comment: %q", out.String())
	}
}

func TestSSEMultipleChoices(t *testing.T) {
	sc := mustScanner(t, allOn(ActionRedact))
	var up strings.Builder
	for _, c := range split(secretAnswer, 5) {
		q, _ := json.Marshal(c)
		for _, i := range []string{"0", "1"} {
			up.WriteString(`data: {"choices":[{"index":` + i + `,"delta":{"content":` + string(q) + `}}]}` + "\n\n")
		}
	}
	up.WriteString("data: [DONE]\n\n")
	var out bytes.Buffer
	run(t, sc.NewSSEWriter(&out), up.String(), 11)
	want := Redact(secretAnswer, sc.Scan(secretAnswer))
	per := map[int]string{}
	for _, ev := range strings.Split(out.String(), "\n\n") {
		var v struct {
			Choices []struct {
				Index int
				Delta struct{ Content string }
			}
		}
		if json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &v) == nil {
			for _, c := range v.Choices {
				per[c.Index] += c.Delta.Content
			}
		}
	}
	if per[0] != want || per[1] != want {
		t.Fatalf("choices:\n0: %q\n1: %q\nwant %q", per[0], per[1], want)
	}
}
