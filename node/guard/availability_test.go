package guard

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/policy"
)

func TestModelUnavailable(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	const why = "weights file /models/llama.gguf does not match its pinned sha256; an admin must check the node"
	m.g.SetModelUnavailable("llama", why)

	code, body := m.call(m.alice, "/v1/chat/completions", chatBody)
	var e llmapi.OpenAIError
	json.Unmarshal([]byte(body), &e)
	want := `model "llama" is stopped on this node: ` + why
	if code != http.StatusServiceUnavailable || e.Error.Message != want || e.Error.Code != reasonUnavailable || e.Error.Type != "server_error" {
		t.Fatalf("%d %s", code, body)
	}
	if p := m.up.last().path; p != "" {
		t.Fatalf("a request for a stopped model reached the upstream: %s", p)
	}
	// Someone without a grant still learns only that: no hint about the model's state.
	if code, body := m.call(m.bob, "/v1/chat/completions", chatBody); code != http.StatusForbidden {
		t.Fatalf("bob: %d %s", code, body)
	}
	// The Ollama family gets its own shape; other models are untouched.
	m.g.SetModelUnavailable("qwen", "being verified")
	if code, body := m.call(m.alice, "/api/chat", `{"model":"qwen","messages":[]}`); code != 503 || body != `{"error":"model \"qwen\" is stopped on this node: being verified"}`+"\n" {
		t.Fatalf("qwen: %d %q", code, body)
	}
	if code, body := m.call(m.alice, "/v1/chat/completions", `{"model":"bare"}`); code != 200 {
		t.Fatalf("bare: %d %s", code, body)
	}

	recs := m.waitRecords(4)
	if r := recs[0]; r.Decision != DecisionUnavailable || r.Reason != reasonUnavailable || r.Status != 503 || r.Model != "llama" || r.Login != "alice@example.com" || r.Grant != "grants[0]" {
		t.Fatalf("audit record %+v", r)
	}
	if r := recs[2]; r.Decision != DecisionUnavailable || r.Model != "qwen" {
		t.Fatalf("audit record %+v", r)
	}

	// Listings leave stopped models out.
	ids := m.listModels(m.alice, "/v1/models")
	if strings.Contains(ids, `"llama"`) || strings.Contains(ids, `"qwen"`) || !strings.Contains(ids, `"bare"`) {
		t.Fatalf("/v1/models with llama and qwen stopped: %s", ids)
	}
	if tags := m.listModels(m.alice, "/api/tags"); tags != `{"models":[]}` { // qwen, the only Ollama model, stopped
		t.Fatalf("/api/tags with qwen stopped: %s", tags)
	}

	// Back again.
	m.g.SetModelAvailable("llama")
	m.g.SetModelAvailable("qwen")
	if m.g.avail.load() != nil {
		t.Fatal("availability not back to nil")
	}
	if code, body := m.call(m.alice, "/v1/chat/completions", chatBody); code != 200 {
		t.Fatalf("after SetModelAvailable: %d %s", code, body)
	}
	if ids := m.listModels(m.alice, "/v1/models"); !strings.Contains(ids, `"llama"`) {
		t.Fatalf("/v1/models after SetModelAvailable: %s", ids)
	}
	if tags := m.listModels(m.alice, "/api/tags"); !strings.Contains(tags, `"qwen"`) {
		t.Fatalf("/api/tags after SetModelAvailable: %s", tags)
	}
}

func (m *mesh) listModels(who *member, path string) string {
	m.t.Helper()
	req, _ := http.NewRequest("GET", m.url+path, nil)
	resp, err := who.client().Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
		m.t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return string(v)
}

func TestAvailabilityConcurrent(t *testing.T) {
	var a availability
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 200 {
				name := []string{"a", "b"}[(i+j)%2]
				if j%3 == 0 {
					a.set(name, "", false)
				} else {
					a.set(name, "r", true)
				}
				_ = a.load()[name]
			}
		}()
	}
	wg.Wait()
	a.set("a", "", false)
	a.set("b", "", false)
	if a.load() != nil {
		t.Fatalf("%v", a.load())
	}
}
