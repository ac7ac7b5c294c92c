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
