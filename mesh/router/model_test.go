package router

import (
	"strings"
	"testing"
)

func TestParseModel(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{`{"model":"llama","messages":[{"role":"user","content":"hi"}]}`, "llama", ""},
		{`  {"stream":true, "model" : "qwen2.5-coder:7b"}  `, "qwen2.5-coder:7b", ""},
		{`{"messages":[]}`, "", `no "model" field`},
		{`{"model":null}`, "", `no "model" field`},
		{`{"model":""}`, "", `"model" is empty`},
		{`{"model":42}`, "", "must be a string, got a number"},
		{`{"model":{"a":1}}`, "", "got an object"},
		{`{"model":["a"]}`, "", "got an array"},
		{`{"model":true}`, "", "got a boolean"},
		{`{"model":"` + strings.Repeat("m", 300) + `"}`, "", "over the limit"},
		{``, "", "body is empty"},
		{`[1,2]`, "", "must be a JSON object, got JSON array"},
		{`"x"`, "", "must be a JSON object"},
		{`{"model":"a"`, "", "ends early"},
		{`{"model":"a",}`, "", "not valid JSON at offset"},
		{`{"model":"a"} {"model":"b"}`, "", "unexpected data after"},
	} {
		got, err := ParseModel([]byte(tc.in))
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("ParseModel(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("ParseModel(%.40s) = %q, %v; want error containing %q", tc.in, got, err, tc.err)
		}
	}
}

func FuzzParseModel(f *testing.F) {
	for _, s := range []string{`{"model":"a"}`, `{"model":1}`, `{"x":{"model":"a"}}`, `[`, `{"model":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ParseModel(in)
		if err != nil {
			if m != "" {
				t.Fatalf("error %v with model %q", err, m)
			}
			return
		}
		if m == "" || len(m) > maxModelLen {
			t.Fatalf("accepted model %q", m)
		}
	})
}
