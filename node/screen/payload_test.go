package screen

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	sc := mustScanner(t, RuleActions{"aws-access-key": ActionRedact, "generic-high-entropy": ActionRedact})
	body := []byte(`{"model":"AKIAQ3EGRT5NBX7KLM2P","id":"x9Kq2LmP8vRt4WzY6nB3cD5fG7hJ1","messages":[{"role":"user","content":"key \"AKIAQ3EGRT5NBX7KLM2P\"\n"}]}`)
	out, fs, err := sc.CheckJSON(body)
	if err != nil || len(fs) != 1 {
		t.Fatalf("findings %v, err %v", fs, err)
	}
	var v struct {
		Model    string
		ID       string
		Messages []struct{ Content string }
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("output is not JSON: %v: %s", err, out)
	}
	if v.Model != "AKIAQ3EGRT5NBX7KLM2P" || !strings.HasPrefix(v.ID, "x9Kq") || v.Messages[0].Content != "key \"[REDACTED:aws-access-key]\"\n" {
		t.Fatalf("got %s", out)
	}
	clean := []byte(`{"messages":[{"content":"nothing here"}]}`)
	if out, _, _ := sc.CheckJSON(clean); &out[0] != &clean[0] {
		t.Fatal("an unchanged body was copied")
	}
}

// TestAppendCheckJSON: AppendCheckJSON gives CheckJSON's answer, appended
// after what dst holds, and leaves dst alone when nothing is redacted.
func TestAppendCheckJSON(t *testing.T) {
	sc := mustScanner(t, allOn(ActionRedact))
	for _, text := range []string{input4K(), inputEvery(), "a key AKIAQ3EGRT5NBX7KLM2P"} {
		q, _ := json.Marshal(text)
		body := []byte(`{"model":"m","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":` + string(q) + `}]}`)
		want, wantFs, wantErr := sc.CheckJSON(body)
		dst := append(make([]byte, 0, 8), "prefix"...)
		fs := []Finding{{Rule: "before"}}
		got, gotFs, err := sc.AppendCheckJSON(dst, fs, body)
		if (err == nil) != (wantErr == nil) || !slices.Equal(gotFs[1:], wantFs) || gotFs[0].Rule != "before" {
			t.Fatalf("findings %v, %v; want %v, %v", gotFs, err, wantFs, wantErr)
		}
		if len(wantFs) == 0 || &want[0] == &body[0] {
			if &got[0] != &body[0] || string(dst) != "prefix" {
				t.Fatalf("nothing redacted, yet got a copy %q / dst %q", got, dst)
			}
			continue
		}
		if string(got) != "prefix"+string(want) {
			t.Fatalf("got %s\nwant prefix%s", got, want)
		}
	}
}

func TestPayloadFilterOllamaDone(t *testing.T) {
	sc := mustScanner(t, RuleActions{"aws-access-key": ActionRedact})
	f := sc.NewPayloadFilter(FormatOllama)
	line := func(dst, p []byte) []byte { return append(append(dst, p...), '\n') }
	var out []byte
	for _, p := range []string{`{"message":{"content":"a AKIAQ3EGRT"},"done":false}`, `{"message":{"content":"5NBX7KLM2P"},"done":false}`, `{"message":{"content":""},"done":true}`} {
		var err error
		if out, err = f.Payload(out, []byte(p), line); err != nil {
			t.Fatal(err)
		}
	}
	var text strings.Builder
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for i, l := range lines {
		var ev struct {
			Message struct{ Content string }
			Done    bool
		}
		if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Done != (i == len(lines)-1) {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		text.WriteString(ev.Message.Content)
	}
	if text.String() != "a [REDACTED:aws-access-key]" {
		t.Fatalf("text %q", text.String())
	}
}

// TestCheckJSONAcrossParts: a secret split across two messages, or two
// content parts, is found and redacted in both.
func TestCheckJSONAcrossParts(t *testing.T) {
	sc := mustScanner(t, allOn(ActionRedact))
	pem := "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx7s9d2Kq+/PdR3m8nB4vT6yU1wZ0aLc5eF9gH2jK3lM4nO5pQ7r\n"
	end := "MIIEowIBAAKCAQEAx7s9d2Kq+/PdR3m8nB4vT6yU1wZ0aLc5eF9gH2jK3lM4nO5pQ7r\n-----END RSA PRIVATE KEY-----"
	for name, body := range map[string]string{
		"messages": `{"messages":[{"role":"user","content":` + jsonq(pem) + `},{"role":"user","content":` + jsonq(end) + `}]}`,
		"parts":    `{"messages":[{"role":"user","content":[{"type":"text","text":` + jsonq(pem) + `},{"type":"text","text":` + jsonq(end) + `}]}]}`,
	} {
		out, fs, err := sc.CheckJSON([]byte(body))
		if err != nil || len(fs) != 2 {
			t.Fatalf("%s: findings %v, err %v", name, fs, err)
		}
		if strings.Contains(string(out), "MIIEowIBAAKCAQEA") || strings.Count(string(out), "[REDACTED:private-key]") != 2 {
			t.Errorf("%s: got %s", name, out)
		}
		var v any
		if json.Unmarshal(out, &v) != nil {
			t.Errorf("%s: output is not JSON: %s", name, out)
		}
	}
}

func jsonq(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
