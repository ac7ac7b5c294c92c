package llmapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// The table holds together: every path found by Lookup, families by
// prefix, twins of the other family and of the same kind, lists GET and
// model APIs POST.
func TestTable(t *testing.T) {
	for _, a := range All() {
		probe := a.Path
		if a.PathModel {
			probe += "llama"
		}
		if Lookup(probe) != a {
			t.Errorf("Lookup(%q) is not %s", probe, a.Name)
		}
		if FamilyOfPath(a.Path) != a.Family || !strings.HasPrefix(a.Name, string(a.Family)+".") {
			t.Errorf("%s at %s: family %s", a.Name, a.Path, a.Family)
		}
		switch a.Kind {
		case KindModel:
			if a.Method != "POST" || len(a.ModelKeys) == 0 || a.ModelKeys[0] != "model" {
				t.Errorf("%s: model API %s %v", a.Name, a.Method, a.ModelKeys)
			}
		case KindList:
			if a.Method != "GET" || len(a.ModelKeys) != 0 {
				t.Errorf("%s: list %s %v", a.Name, a.Method, a.ModelKeys)
			}
		default:
			t.Errorf("%s: kind %d", a.Name, a.Kind)
		}
		if a.Twin != "" {
			tw := Lookup(a.Twin)
			if tw == nil || tw.Family == a.Family || tw.Kind != a.Kind {
				t.Errorf("%s: twin %s", a.Name, a.Twin)
			}
		}
	}
	for _, p := range []string{"/v1/models/", "/v1/images/generations", "/api/pull", "/metrics", "/api/chat/"} {
		if a := Lookup(p); a != nil {
			t.Errorf("Lookup(%q) = %s", p, a.Name)
		}
	}
	if a := Lookup("/v1/models/meta-llama/Llama-3"); a == nil || a.PathModelName("/v1/models/meta-llama/Llama-3") != "meta-llama/Llama-3" {
		t.Errorf("model with a slash: %v", a)
	}
}

func TestParseFamily(t *testing.T) {
	for in, want := range map[string]Family{"": OpenAI, "openai": OpenAI, "ollama": Ollama} {
		if f, ok := ParseFamily(in); !ok || f != want {
			t.Errorf("ParseFamily(%q) = %q, %v", in, f, ok)
		}
	}
	if _, ok := ParseFamily("mcp"); ok {
		t.Error("unknown family accepted")
	}
}

func TestReadModel(t *testing.T) {
	chat, show := Lookup("/v1/chat/completions"), Lookup("/api/show")
	for _, tc := range []struct {
		api       *API
		in, want  string
		errSubstr string
	}{
		{chat, `{"model":"llama","messages":[{"role":"user","content":"hi"}]}`, "llama", ""},
		{chat, `  {"stream":true, "model" : "qwen2.5-coder:7b"}  `, "qwen2.5-coder:7b", ""},
		{chat, `{"model":"ll\u0061ma"}`, "llama", ""},
		{chat, `{"messages":[]}`, "", `no "model"`},
		{chat, `{"model":null}`, "", `no "model"`},
		{chat, `{"model":""}`, "", `"model" is empty`},
		{chat, `{"model":42}`, "", "must be a string, got a number"},
		{chat, `{"model":{"a":1}}`, "", "got an object"},
		{chat, `{"model":["a"]}`, "", "got an array"},
		{chat, `{"model":true}`, "", "got a boolean"},
		{chat, `{"model":"` + strings.Repeat("m", 300) + `"}`, "", "over the limit"},
		{chat, ``, "", "body is empty"},
		{chat, `[1,2]`, "", "got JSON array"},
		{chat, `null`, "", "got null"},
		{chat, `"x"`, "", "not a JSON object"},
		{chat, `{"model":"a"`, "", "ends early"},
		{chat, `{"model":"a",}`, "", "at offset"},
		{chat, `{"model":"a"} {"model":"b"}`, "", "at offset"},
		// Exact keys: Go servers would read these as "model".
		{chat, `{"Model":"a"}`, "", `"Model" differs from "model" only in case`},
		{chat, `{"model":"a","MODEL":"b"}`, "", "only in case"},
		{chat, `{"model":"a","stReam":true}`, "", "only in case"},
		{chat, `{"name":"llama"}`, "", `no "model"`}, // only /api/show reads "name"
		// /api/show: "model", else Ollama's older "name".
		{show, `{"name":"llama"}`, "llama", ""},
		{show, `{"model":"","name":"llama"}`, "llama", ""},
		{show, `{"model":"qwen","name":"llama"}`, "qwen", ""},
		{show, `{"model":"","name":""}`, "", `"model" is empty`},
		{show, `{"Name":"llama"}`, "", `differs from "name" only in case`},
	} {
		got, err := ReadModel([]byte(tc.in), tc.api)
		if tc.errSubstr == "" && (err != nil || got != tc.want) {
			t.Errorf("%s %s: %q, %v; want %q", tc.api.Name, tc.in, got, err, tc.want)
		}
		if tc.errSubstr != "" {
			if _, ok := err.(*RequestError); !ok || !strings.Contains(err.Error(), tc.errSubstr) {
				t.Errorf("%s %.40s: %q, %v; want a RequestError with %q", tc.api.Name, tc.in, got, err, tc.errSubstr)
			}
		}
	}
}

func TestErrorShapes(t *testing.T) {
	var oe OpenAIError
	if err := json.Unmarshal(ErrorBody(OpenAI, 404, "model_not_found", "no such model"), &oe); err != nil ||
		oe.Error.Message != "no such model" || oe.Error.Type != "not_found_error" || oe.Error.Code != "model_not_found" {
		t.Errorf("OpenAI shape: %+v %v", oe, err)
	}
	if got := string(ErrorBody(Ollama, 404, "model_not_found", "no such model")); got != `{"error":"no such model"}` {
		t.Errorf("Ollama shape: %s", got)
	}
}

func TestListBody(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/models":   `{"object":"list","data":[{"id":"a","object":"model","created":0,"owned_by":"moat"}]}`,
		"/v1/models/a": `{"id":"a","object":"model","created":0,"owned_by":"moat"}`,
		"/api/tags":    `{"models":[{"name":"a","model":"a","modified_at":"0001-01-01T00:00:00Z","size":0,"digest":"","details":{}}]}`,
	} {
		if got := strings.TrimSpace(string(ListBody(Lookup(path), []string{"a"}, "moat", time.Time{}))); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
}

// FuzzReadModel: the exact-key reader never accepts a model a Go server
// would not see, nor one out of bounds, and reads plain strings as
// encoding/json does.
func FuzzReadModel(f *testing.F) {
	for _, s := range []string{`{"model":"a"}`, `{"model":1}`, `{"x":{"model":"a"}}`, `[`, `{"model":"\u00e9"}`,
		`{"name":"a"}`, `{"model":"","name":"b"}`, `{"model":"a","Model":"b"}`, `{"mod\u0065l":"x"}`, "{\"model\":\"\xff\"}",
		`{"model":"a","model":"b"}`, ` { "x" : [1,{"model":"y"},"]"] , "model" : null , "name":"n\"q" } `, `{"model":"a\u00e9","stream":true}`,
		`{"messages":[{"content":"} {\"model\":\"z\"}"}],"model":"w"}`, `{}`, `{"model":-1.5e3}`} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, showAPI bool) {
		api := Lookup("/v1/chat/completions")
		if showAPI {
			api = Lookup("/api/show")
		}
		m, err := ReadModel(in, api)
		if fm, ferr, ok := readModelFast(in, api); ok {
			sm, serr := readModel(in, api)
			if fm != sm || (ferr == nil) != (serr == nil) || (ferr != nil && ferr.Error() != serr.Error()) {
				t.Fatalf("%q: fast way %q, %v; general way %q, %v", in, fm, ferr, sm, serr)
			}
		}
		if err != nil {
			if _, ok := err.(*RequestError); !ok || m != "" {
				t.Fatalf("error %T %v with model %q", err, err, m)
			}
			return
		}
		if m == "" || len(m) > MaxModelLen {
			t.Fatalf("accepted model %q", m)
		}
		var up struct{ Model, Name string } // a Go server: case-insensitive, last key wins
		if json.Unmarshal(in, &up) == nil {
			if showAPI && up.Model == "" {
				up.Model = up.Name
			}
			if up.Model != m {
				t.Fatalf("%s read as %q; a Go server sees %q", in, m, up.Model)
			}
		}
		var s2 string
		s1, e1 := readString(in)
		if e2 := json.Unmarshal(in, &s2); (e1 == nil) != (e2 == nil) || (e1 == nil && s1 != s2) {
			t.Fatalf("readString(%q) = %q, %v; encoding/json: %q, %v", in, s1, e1, s2, e2)
		}
	})
}

// The guard reads every request's model: one allocation, the name.
func TestModelAllocs(t *testing.T) {
	api := Lookup("/v1/chat/completions")
	fields, err := Fields([]byte(`{"model":"llama","messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { api.Model(fields) }); n > 1 {
		t.Errorf("Model: %v allocations, want 1", n)
	}
}

// BenchmarkReadModel: a 4 KiB chat request, the way the router reads it
// and the general way through Fields.
func BenchmarkReadModel(b *testing.B) {
	api := Lookup("/v1/chat/completions")
	body := []byte(`{"model":"llama","stream":true,"max_tokens":256,"messages":[{"role":"system","content":"You are helpful."},{"role":"user","content":"` +
		strings.Repeat("Summarise the quarterly figures for the board. ", 85) + `"}]}`)
	for _, c := range []struct {
		name string
		read func([]byte, *API) (string, error)
	}{{"router", ReadModel}, {"general", readModel}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if m, err := c.read(body, api); m != "llama" || err != nil {
					b.Fatal(m, err)
				}
			}
		})
	}
}
