package guard

import (
	"encoding/json"
	"testing"
)

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"llama","stream":true,"max_tokens":100,"stream_options":{"include_usage":false}}`,
		`{"model":"m","max_completion_tokens":5,"max_tokens":9,"logprobs":true}`,
		`{"model":"q","options":{"num_predict":-1,"temperature":1}}`,
		`{"model":"q","options":null,"logprobs":3}`,
		`{"model":""}`, `[]`, `null`, `{"model":"x","max_output_tokens":1e3}`,
	} {
		f.Add(s, uint8(0))
	}
	paths := []string{"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/api/chat", "/api/generate", "/api/embed"}
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		api := apis[paths[int(which)%len(paths)]]
		r, err := parseRequest([]byte(body), api)
		if err != nil {
			if _, ok := err.(*badRequest); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if r.Model == "" || len(r.Model) > maxModelName {
			t.Fatalf("accepted model %q", r.Model)
		}
		out := r.rewrite([]byte(body), api, "up-"+r.Model, 7)
		r2, err := parseRequest(out, api)
		if err != nil || !json.Valid(out) {
			t.Fatalf("rewrite of %s gave %s: %v", body, out, err)
		}
		if r2.Model != "up-"+r.Model || (len(api.maxKeys) > 0 && (r2.MaxTokens < 0 || r2.MaxTokens > 7)) {
			t.Fatalf("rewrite of %s gave %s (model %q, max %d)", body, out, r2.Model, r2.MaxTokens)
		}
	})
}

func TestDuplicateKeysCannotSmuggle(t *testing.T) {
	api := apis["/v1/chat/completions"]
	r, err := parseRequest([]byte(`{"model":"ok","max_tokens":1,"model":"secret","max_tokens":99999}`), api)
	if err != nil {
		t.Fatal(err)
	}
	out := string(r.rewrite(nil, api, "up", 10))
	if out != `{"max_tokens":10,"model":"up"}` {
		t.Fatalf("upstream body %s", out)
	}
}

func TestRewriteKeepsUnchangedBodies(t *testing.T) {
	api := apis["/v1/chat/completions"]
	for _, c := range []struct {
		body string
		same bool
	}{
		{`{"model":"m","max_tokens":5,"messages":[{"model":"x","max_tokens":1}]}`, true},
		{`{"model":"m","max_tokens":5,"model":"m"}`, false},
		{`{"model":"m","max_tokens":5,"mod\u0065l":"m"}`, false},
		{`{"model":"m"}`, false}, // capped: max_tokens added
	} {
		r, err := parseRequest([]byte(c.body), api)
		if err != nil {
			t.Fatal(err)
		}
		out := r.rewrite([]byte(c.body), api, "m", 10)
		if (string(out) == c.body) != c.same {
			t.Errorf("%s → %s", c.body, out)
		}
	}
}

// FuzzRequestJSON: the guard's own readers of request bodies read what
// encoding/json reads.
func FuzzRequestJSON(f *testing.F) {
	for _, s := range []string{
		`{"model":"llama","stream":true,"max_tokens":100,"stream_options":{"include_usage":false}}`,
		` { "model" : "m" , "a":[1,{"b":null}], "model":"n" } `, `{"model":"\u006d","x":1}`, `{"mod\u0065l":"x"}`,
		"{\"model\":\"\xff\"}", `{"a":1,}`, `{}`, `null`, `[]`, `"x"`, `true`, `false`, `-0`, `12`, `1.5`, `1e2`,
		`9223372036854775807`, `-9223372036854775808`, `9223372036854775808`, `"a\"b"`, `"é"`, `{"a":01}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		var want map[string]json.RawMessage
		werr := json.Unmarshal(b, &want)
		if got, ok := splitObject(b); ok {
			if werr != nil || len(got) != len(want) {
				t.Fatalf("splitObject(%q) = %q, encoding/json: %q, %v", s, got, want, werr)
			}
			for k, v := range want {
				if string(got[k]) != string(v) {
					t.Fatalf("splitObject(%q)[%q] = %q, encoding/json: %q", s, k, got[k], v)
				}
			}
		}
		var s1, s2 string
		e1, e2 := unmarshalString(b, &s1), json.Unmarshal(b, &s2)
		if (e1 == nil) != (e2 == nil) || s1 != s2 {
			t.Fatalf("unmarshalString(%q) = %q, %v; encoding/json: %q, %v", s, s1, e1, s2, e2)
		}
		var b1, b2 bool
		e1, e2 = unmarshalBool(b, &b1), json.Unmarshal(b, &b2)
		if (e1 == nil) != (e2 == nil) || b1 != b2 {
			t.Fatalf("unmarshalBool(%q) = %v, %v; encoding/json: %v, %v", s, b1, e1, b2, e2)
		}
		var n1, n2 int64
		e1, e2 = unmarshalInt64(b, &n1), json.Unmarshal(b, &n2)
		if (e1 == nil) != (e2 == nil) || n1 != n2 {
			t.Fatalf("unmarshalInt64(%q) = %v, %v; encoding/json: %v, %v", s, n1, e1, n2, e2)
		}
	})
}
