package guard

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"
	"testing"

	"github.com/moatmesh/moat/mesh/llmapi"
)

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"llama","stream":true,"max_tokens":100,"stream_options":{"include_usage":false}}`,
		`{"model":"m","max_completion_tokens":5,"max_tokens":9,"logprobs":true}`,
		`{"model":"q","options":{"num_predict":-1,"temperature":1}}`,
		`{"model":"q","options":null,"logprobs":3}`,
		`{"model":""}`, `[]`, `null`, `{"model":"x","max_output_tokens":1e3}`,
		`{"model":"m","Model":"secret"}`, `{"model":"m","max_toKens":9}`, `{"model":"m","optionſ":{"num_predict":9}}`,
		`{"name":"m"}`, `{"model":"","name":"m"}`, `{"model":"m","name":"n"}`, `{"model":"m","Name":"n"}`,
		`{"model":"m","n":3,"best_of":4,"n_predict":-1,"min_tokens":50,"prompt":["a","b"]}`,
		`{"model":"m", "max_tokens" : 9 , "n_predict":100000 ,"x":[1,{"y":2}]}`, `{ "model":"m","N":2}`,
		`{"model":"q","keep_alive":-1,"options":{"num_predict":-2,"num_ctx":99999}}`, `{"model":"q","raw":true,"template":""}`,
		`{"model":"m","prompt":[[1,2],[3]],"ignore_eos":false,"background":false}`,
	} {
		f.Add(s, uint8(0))
	}
	apis := modelAPIs()
	f.Fuzz(func(t *testing.T, body string, which uint8) {
		api := apis[int(which)%len(apis)]
		r, err := parseRequest([]byte(body), api)
		if err != nil {
			if _, ok := err.(*badRequest); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if r.Model == "" || len(r.Model) > llmapi.MaxModelLen {
			t.Fatalf("accepted model %q", r.Model)
		}
		// Forwarded as it is (nothing to change), a Go upstream decoding
		// case-insensitively must see what the guard decided on.
		stream := r.Stream
		same := r.rewrite([]byte(body), api, r.Model, &output{})
		upstreamAgrees(t, api, body, same, r.Model, stream, -1)
		shaped, err := r.shape(api, outputRule{maxTokens: 7, maxChoices: 4})
		if err != nil {
			return
		}
		if shaped.answers > 4 || shaped.length > 7 {
			t.Fatalf("%s shaped to %d answers of %d tokens", body, shaped.answers, shaped.length)
		}
		out := r.rewrite([]byte(body), api, "up", shaped)
		r2, err := parseRequest(out, api)
		if err != nil || !json.Valid(out) {
			t.Fatalf("rewrite of %s gave %s: %v", body, out, err)
		}
		if r2.Model != "up" || (len(api.MaxKeys) > 0 && (r2.MaxTokens < 0 || r2.maxLargest > shaped.length || r2.unbounded)) {
			t.Fatalf("rewrite of %s gave %s (model %q, max %d)", body, out, r2.Model, r2.MaxTokens)
		}
		if r2.cost.answers() != shaped.answers || r2.cost.keepAlive || r2.cost.minTokens > shaped.length {
			t.Fatalf("rewrite of %s gave %s: %+v", body, out, r2.cost)
		}
		upstreamAgrees(t, api, body, out, "up", stream, shaped.length)
	})
}

// modelAPIs are the APIs whose requests name a model.
func modelAPIs() []*llmapi.API {
	var out []*llmapi.API
	for _, a := range llmapi.All() {
		if a.Kind == llmapi.KindModel {
			out = append(out, a)
		}
	}
	return out
}

// upstreamAgrees decodes out as a Go server would (encoding/json into a
// struct: last key wins, names matched case-insensitively) and fails t
// when it sees another model or stream flag than the guard decided on,
// or, with limit ≥ 0, a length above it in one of api's length fields.
func upstreamAgrees(t *testing.T, api *llmapi.API, body string, out []byte, model string, stream bool, limit int64) {
	t.Helper()
	var up struct {
		Model         string `json:"model"`
		Name          string `json:"name"` // Ollama's /api/show, read when "model" is empty
		Stream        *bool  `json:"stream"`
		MaxTokens     *int64 `json:"max_tokens"`
		MaxCompletion *int64 `json:"max_completion_tokens"`
		MaxOutput     *int64 `json:"max_output_tokens"`
		NPredict      *int64 `json:"n_predict"`
		Options       *struct {
			NumPredict *int64 `json:"num_predict"`
		} `json:"options"`
	}
	if json.Unmarshal(out, &up) != nil {
		return // a type the guard does not read differs; the upstream refuses it
	}
	if slices.Contains(api.ModelKeys, "name") {
		up.Model = cmp.Or(up.Model, up.Name)
	}
	if up.Model != model || (up.Stream != nil && *up.Stream != stream) {
		t.Fatalf("%s went upstream as %s: a Go server sees model %q stream %v; the guard decided %q %v", body, out, up.Model, up.Stream, model, stream)
	}
	if limit < 0 {
		return
	}
	lengths := map[string]*int64{"max_tokens": up.MaxTokens, "max_completion_tokens": up.MaxCompletion, "max_output_tokens": up.MaxOutput, llmapi.NPredict: up.NPredict}
	if up.Options != nil {
		lengths[llmapi.NumPredict] = up.Options.NumPredict
	}
	for _, k := range api.MaxKeys {
		if n := lengths[k]; n != nil && (*n > limit || (k == llmapi.NumPredict && *n <= 0) || *n < 0) {
			t.Fatalf("%s went upstream as %s: a Go server sees a length of %d, above %d", body, out, *n, limit)
		}
	}
}

func TestDuplicateKeysCannotSmuggle(t *testing.T) {
	api := llmapi.Lookup("/v1/chat/completions")
	r, err := parseRequest([]byte(`{"model":"ok","max_tokens":1,"model":"secret","max_tokens":99999}`), api)
	if err != nil {
		t.Fatal(err)
	}
	shaped, _ := r.shape(api, outputRule{maxTokens: 10, maxChoices: 1})
	out := string(r.rewrite(nil, api, "up", shaped))
	if out != `{"max_tokens":10,"model":"up"}` {
		t.Fatalf("upstream body %s", out)
	}
}

func TestRewriteKeepsUnchangedBodies(t *testing.T) {
	api := llmapi.Lookup("/v1/chat/completions")
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
		shaped, _ := r.shape(api, outputRule{maxTokens: 10, maxChoices: 1})
		out := r.rewrite([]byte(c.body), api, "m", shaped)
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
		var b1, b2 bool
		e1, e2 := unmarshalBool(b, &b1), json.Unmarshal(b, &b2)
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

// Keys that differ from the ones the guard reads only in case (Unicode
// folding included) are refused: Go servers would read them instead.
func TestCaseFoldedKeysRefused(t *testing.T) {
	for _, c := range []struct{ path, body string }{
		{"/api/chat", `{"model":"m","optionſ":{"num_predict":1000000}}`},
		{"/api/chat", `{"model":"m","options":{"num_predict":1},"Options":{"num_predict":1000000}}`},
		{"/api/generate", `{"model":"m","options":{"num_predict":1,"Num_predict":1000000}}`},
		{"/v1/responses", `{"model":"m","MAX_OUTPUT_TOKENS":1000000}`},
		{"/v1/chat/completions", `{"model":"m","max_completion_toKens":1000000}`},
	} {
		if _, err := parseRequest([]byte(c.body), llmapi.Lookup(c.path)); err == nil {
			t.Errorf("%s %s accepted", c.path, c.body)
		}
	}
	// Keys the guard does not read may be spelt any way.
	if _, err := parseRequest([]byte(`{"model":"m","Temperature":1,"temperature":0}`), llmapi.Lookup("/v1/chat/completions")); err != nil {
		t.Errorf("other keys: %v", err)
	}
}

// A cap holds for every length field a server might honour, and Ollama's
// num_predict 0 (no bound) is capped like -1.
func TestCapHoldsForEveryLengthField(t *testing.T) {
	for _, c := range []struct{ path, body, want string }{
		{"/v1/chat/completions", `{"model":"m","max_completion_tokens":5,"max_tokens":900}`, `{"model":"m","max_completion_tokens":5,"max_tokens":10}`},
		{"/api/chat", `{"model":"m","options":{"num_predict":0}}`, `{"model":"m","options":{"num_predict":10}}`},
	} {
		api := llmapi.Lookup(c.path)
		r, err := parseRequest([]byte(c.body), api)
		if err != nil {
			t.Fatal(err)
		}
		shaped, _ := r.shape(api, outputRule{maxTokens: 10, maxChoices: 1})
		if got := string(r.rewrite([]byte(c.body), api, "m", shaped)); got != c.want {
			t.Errorf("%s upstream as %s, want %s", c.body, got, c.want)
		}
	}
}

// FuzzSpliceObject: an edit of a plain object changes the edited members
// and nothing else, and the result reads as the object with the edits
// applied.
func FuzzSpliceObject(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","max_tokens":9}`, ` { "a" : [1,{"b":2}] , "max_tokens":1 } `, `{}`, `{ }`, `{"n":2}`,
		`{"max_tokens":1,"max_tokens":2}`, `{"a":"\u0041","b":null}`, `[]`, `{"a":1,}`, "{\"a\":1}\n",
	} {
		f.Add(s, "max_tokens", "50", true)
	}
	f.Add(`{"keep_alive":"5m","x":1}`, "keep_alive", "", false)
	f.Fuzz(func(t *testing.T, body, key, val string, set bool) {
		var before map[string]json.RawMessage
		if json.Unmarshal([]byte(body), &before) != nil || before == nil || !plainKeys([]byte(body)) ||
			!validEditKey(key) || (set && !json.Valid([]byte(val))) {
			return
		}
		e := edit{key: key}
		if set {
			e.val = []byte(val)
		}
		out, ok := spliceObject([]byte(body), []edit{e})
		if !ok {
			return // left to re-encoding
		}
		var after map[string]json.RawMessage
		if err := json.Unmarshal(out, &after); err != nil {
			t.Fatalf("%s with %s=%s gave %s: %v", body, key, val, out, err)
		}
		want := len(before)
		if _, had := before[key]; had && !set {
			want--
		} else if !had && set {
			want++
		}
		if len(after) != want {
			t.Fatalf("%s with %s=%s gave %s", body, key, val, out)
		}
		for k, v := range before {
			if k != key && string(after[k]) != string(v) {
				t.Fatalf("%s with %s=%s changed %s: %s", body, key, val, k, out)
			}
		}
		if set && !bytes.Equal(bytes.TrimSpace(after[key]), bytes.TrimSpace([]byte(val))) {
			t.Fatalf("%s with %s=%s gave %s", body, key, val, out)
		}
	})
}

// validEditKey: the guard edits only plain keys of its own.
func validEditKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
