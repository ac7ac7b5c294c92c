package guard

import (
	"strings"
	"testing"

	"github.com/moatmesh/moat/policy"
)

// Ollama's model information and legacy embeddings go through like the
// other model APIs: decided on the model they name, in Ollama's error
// shape; /api/show counts no tokens.
func TestOllamaShowAndLegacyEmbeddings(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	for _, body := range []string{`{"name":"qwen"}`, `{"model":"qwen","verbose":true}`, `{"model":"","name":"qwen"}`} {
		code, got := m.call(m.alice, "/api/show", body)
		if code != 200 || got != `{"modelfile":"FROM qwen","details":{"family":"stub"}}` {
			t.Fatalf("/api/show %s: %d %s", body, code, got)
		}
		// Upstream sees the model in "model" alone.
		if up := m.up.last(); up.path != "/api/show" || up.body["model"] != "qwen" || up.body["name"] != nil {
			t.Fatalf("/api/show %s went upstream as %s %v", body, up.path, up.body)
		}
	}
	code, got := m.call(m.alice, "/api/embeddings", `{"model":"qwen","prompt":"the quick brown fox"}`)
	if code != 200 || got != `{"embedding":[0.5,-0.25]}` {
		t.Fatalf("/api/embeddings: %d %s", code, got)
	}
	// A record is written once its answer has gone out, so the last
	// show's may come after the embeddings'.
	for _, r := range m.waitRecords(4) {
		switch {
		case r.API == "ollama.show" && r.Model == "qwen" && r.TokensIn == 0 && r.TokensOut == 0 && r.Decision == "allow":
		case r.API == "ollama.embeddings" && r.TokensIn > 0 && r.TokensOut == 0 && r.Estimated:
		default:
			t.Fatalf("record %+v", r)
		}
	}

	for _, tc := range []struct{ who, body, want string }{
		{"bob", `{"name":"qwen"}`, `is not granted to bob@example.com`},
		{"alice", `{"name":"llama"}`, `speaks the openai API`},
		{"alice", `{"name":"qwen","Name":"llama"}`, `differs from \"name\" only in case`},
		{"alice", `{"verbose":true}`, `has no \"model\"`},
	} {
		who := m.alice
		if tc.who == "bob" {
			who = m.bob
		}
		code, got := m.call(who, "/api/show", tc.body)
		if code/100 != 4 || !strings.Contains(got, tc.want) || !strings.HasPrefix(got, `{"error":"`) {
			t.Errorf("%s /api/show %s: %d %s, want an Ollama error with %q", tc.who, tc.body, code, got, tc.want)
		}
	}
}
