package guard

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/policy"
)

const chatBody = `{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`

func TestStreamedChatChunkByChunk(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	m.up.gate = make(chan struct{})
	resp := m.post(m.alice, "/v1/chat/completions", chatBody)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	// The upstream is still holding its last chunk: this one came through
	// the guard on its own.
	if err != nil || !strings.Contains(first, `"content":"tok "`) {
		t.Fatalf("first chunk %q, %v", first, err)
	}
	close(m.up.gate)
	evs := events(br)
	if len(evs) != 5 || evs[len(evs)-1] != "[DONE]" { // 4 more chunks + [DONE]; the usage chunk stripped
		t.Fatalf("rest of the stream: %q", evs)
	}
	for _, e := range evs {
		if strings.Contains(e, "usage") {
			t.Fatalf("usage chunk reached a caller who did not ask: %s", e)
		}
	}
	if so, _ := m.up.last().body["stream_options"].(map[string]any); so["include_usage"] != true {
		t.Fatalf("upstream was not asked for usage: %v", m.up.last().body)
	}
	rec := m.waitRecords(1)[0]
	if rec.Decision != audit.DecisionAllow || rec.Login != "alice@example.com" || rec.DeviceID != "dev2" || rec.Grant != "grants[0]" ||
		rec.TokensIn != 10 || rec.TokensOut != 5 || rec.Estimated || rec.Status != 200 || rec.API != "openai.chat" ||
		!strings.HasPrefix(rec.PromptHash, "hmac-sha256:") || rec.NodeID != "n1" {
		t.Fatalf("audit record %+v", rec)
	}
}

func TestUsageKeptWhenAsked(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	_, body := m.call(m.alice, "/v1/chat/completions", `{"model":"llama","stream":true,"stream_options":{"include_usage":true}}`)
	if !strings.Contains(body, `"usage":{"prompt_tokens":10`) {
		t.Fatalf("usage missing: %s", body)
	}
}

func TestOllamaStream(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	code, body := m.call(m.alice, "/api/chat", `{"model":"qwen","messages":[]}`)
	if code != 200 || strings.Count(body, "\n") != 6 || !strings.Contains(body, `"done":true`) {
		t.Fatalf("%d %q", code, body)
	}
	if rec := m.waitRecords(1)[0]; rec.TokensIn != 10 || rec.TokensOut != 5 || rec.API != "ollama.chat" {
		t.Fatalf("%+v", rec)
	}
}

func TestNotGranted(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	code, body := m.call(m.bob, "/v1/chat/completions", chatBody)
	var e llmapi.OpenAIError
	json.Unmarshal([]byte(body), &e)
	if code != 403 || e.Error.Code != reasonNotGranted || e.Error.Type != "permission_error" ||
		e.Error.Message != `model "llama" is not granted to bob@example.com; ask an admin` {
		t.Fatalf("%d %s", code, body)
	}
	code, body = m.call(m.bob, "/api/chat", `{"model":"qwen"}`)
	if code != 403 || body != `{"error":"model \"qwen\" is not granted to bob@example.com; ask an admin"}`+"\n" {
		t.Fatalf("ollama shape: %d %s", code, body)
	}
	recs := m.waitRecords(2)
	if r := recs[0]; r.Decision != audit.DecisionDeny || r.Login != "bob@example.com" || r.Status != 403 || r.Reason != reasonNotGranted || r.Model != "llama" {
		t.Fatalf("audit %+v", r)
	}
	if len(m.up.seen) != 0 {
		t.Fatal("a refused request reached the upstream")
	}
}

func TestSpoofedIdentityHeaders(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	spoof := []string{
		"X-Forwarded-For", m.alice.Addrs[0].String(), "Forwarded", "for=" + m.alice.Addrs[0].String(),
		"X-Real-IP", m.alice.Addrs[0].String(), "X-Moat-User", "alice@example.com", "Authorization", "Bearer alice",
	}
	if code, _ := m.call(m.bob, "/v1/chat/completions", `{"model":"llama"}`, spoof...); code != 403 {
		t.Fatalf("bob claiming to be alice: %d", code)
	}
	spoof = append(spoof, "X-Moat-Login", "bob@example.com")
	if code, body := m.call(m.alice, "/v1/chat/completions", `{"model":"llama"}`, spoof...); code != 200 {
		t.Fatalf("alice with junk headers: %d %s", code, body)
	}
	h := m.up.last().header
	for k := range h {
		if k == "Authorization" || k == "Forwarded" || k == "X-Real-Ip" || strings.HasPrefix(k, "X-Moat") || (k == "X-Forwarded-For") {
			t.Errorf("upstream received %s: %v", k, h[k])
		}
	}
}

func TestMFATooOld(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	code, body := m.call(m.carol, "/v1/chat/completions", chatBody)
	if code != 401 || !strings.Contains(body, `run \"moat login\"`) || !strings.Contains(body, "within the last 12h0m0s") {
		t.Fatalf("%d %s", code, body)
	}
	if r := m.waitRecords(1)[0]; r.Decision != audit.DecisionDenyMFA || r.Grant != "grants[0]" {
		t.Fatalf("%+v", r)
	}
}

// serveAs calls the guard directly, as if from addr.
func serveAs(g *Guard, addr, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = addr
	w := httptest.NewRecorder()
	g.ServeHTTP(w, req)
	return w
}

func TestUnknownAndExpiredCallers(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	if w := serveAs(m.g, "100.64.0.99:1234", "POST", "/v1/chat/completions", chatBody); w.Code != 403 || !strings.Contains(w.Body.String(), reasonUnknownCaller) {
		t.Fatalf("unknown: %d %s", w.Code, w.Body)
	}
	m.alice.id.Expiry = time.Now().Add(-time.Minute)
	m.apply(2)
	w := serveAs(m.g, "[fd7a:6d6f:6174::2]:999", "POST", "/v1/chat/completions", chatBody)
	if w.Code != 401 || !strings.Contains(w.Body.String(), `run \"moat login\"`) {
		t.Fatalf("expired: %d %s", w.Code, w.Body)
	}
	// Revoked: gone from the netmap, so unknown.
	m.aliceAccess = nil
	nm := m.node.netmap(3, m.rules, m.bob.peer())
	if err := m.g.SetNetMap(nm); err != nil {
		t.Fatal(err)
	}
	if w := serveAs(m.g, "100.64.0.2:1", "POST", "/v1/chat/completions", chatBody); w.Code != 403 {
		t.Fatalf("revoked: %d", w.Code)
	}
}

func TestNoNetmapRefusesAll(t *testing.T) {
	g, err := New(Config{Models: map[string]Upstream{"m": {URL: "http://127.0.0.1:9", Kind: KindOpenAI}}})
	if err != nil {
		t.Fatal(err)
	}
	if w := serveAs(g, "100.64.0.2:1", "POST", "/v1/chat/completions", `{"model":"m"}`); w.Code != 403 {
		t.Fatal(w.Code)
	}
}

func TestBadNetmapKeepsLast(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	bad := m.nodeNetMap(9)
	bad.Peers[0].Access = []wire.ModelAccess{{Model: "llama", Grant: 7}}
	if err := m.g.SetNetMap(bad); err == nil {
		t.Fatal("netmap with a dangling grant accepted")
	}
	if code, _ := m.call(m.alice, "/v1/chat/completions", `{"model":"llama"}`); code != 200 {
		t.Fatalf("after a refused netmap: %d", code)
	}
}

func TestRequestErrors(t *testing.T) {
	m := newMesh(t, policy.Limits{}, func(c *Config) { c.MaxBodyBytes = 1024 })
	for _, tc := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/v1/chat/completions", `{"stream":true}`, 400, `has no \"model\"`},
		{"/v1/chat/completions", `[1]`, 400, "not a JSON object"},
		{"/v1/chat/completions", `{"model":"llama","max_tokens":-3}`, 400, `\"max_tokens\" must be a non-negative integer`},
		{"/v1/chat/completions", `{"model":"llama","x":"` + strings.Repeat("a", 2000) + `"}`, 413, "larger than this node's limit of 1024 bytes"},
		{"/api/chat", `{"model":"llama"}`, 400, "call /v1/chat/completions instead of /api/chat"},
		{"/v1/nope", `{}`, 404, "no API at /v1/nope"},
		// Keys that differ only in case: Go servers (Ollama) read them as the real ones.
		{"/v1/chat/completions", `{"model":"llama","Model":"secret"}`, 400, `differs from \"model\" only in case`},
		{"/v1/chat/completions", `{"model":"llama","max_toKens":100000}`, 400, `differs from \"max_tokens\" only in case`},
		{"/v1/chat/completions", `{"model":"llama","ſtream":true}`, 400, `differs from \"stream\" only in case`},
		{"/v1/chat/completions", `{"model":"llama","stream":true,"stream_options":{"include_usage":false,"Include_usage":true}}`, 400, `\"stream_options\" must be an object`},
	} {
		if code, body := m.call(m.alice, tc.path, tc.body); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.path, tc.body[:min(len(tc.body), 40)], code, body, tc.code, tc.want)
		}
	}
}

func TestListsFiltered(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	get := func(who *member, path string) (int, string) {
		resp, err := who.client().Get(m.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&sb)
		return resp.StatusCode, sb.String()
	}
	// Each list holds the models of its API family: qwen is Ollama's.
	if _, b := get(m.alice, "/v1/models"); !strings.Contains(b, `"id":"llama"`) || strings.Contains(b, "qwen") || strings.Count(b, `"id"`) != len(testModels)-1 {
		t.Fatalf("alice models: %s", b)
	}
	for _, who := range []*member{m.bob, m.carol} { // no grant; grant but stale MFA
		if _, b := get(who, "/v1/models"); b != `{"object":"list","data":[]}`+"\n" {
			t.Fatalf("models: %s", b)
		}
	}
	if _, b := get(m.alice, "/api/tags"); !strings.Contains(b, `{"name":"qwen","model":"qwen",`) || strings.Count(b, `"name"`) != 1 {
		t.Fatalf("tags: %s", b)
	}
	if code, b := get(m.alice, "/v1/models/llama"); code != 200 || !strings.Contains(b, `"id":"llama"`) {
		t.Fatalf("/v1/models/llama: %d %s", code, b)
	}
	for _, path := range []string{"/v1/models/qwen", "/v1/models/nope"} { // Ollama's; not served
		if code, b := get(m.alice, path); code != 404 || !strings.Contains(b, "model_not_found") {
			t.Fatalf("%s: %d %s", path, code, b)
		}
	}
	if code, b := get(m.bob, "/v1/models/llama"); code != 404 {
		t.Fatalf("bob /v1/models/llama: %d %s", code, b)
	}
	m.call(m.alice, "/v1/chat/completions", `{"model":"llama"}`)
	m.waitRecords(1) // metrics are counted as the request ends, after its answer
	if code, b := get(m.alice, "/metrics"); code != 200 || !strings.Contains(b, `moat_guard_tokens_total{direction="out",model="llama"} 5`) {
		t.Fatalf("admin metrics: %d %s", code, b)
	}
	if code, _ := get(m.bob, "/metrics"); code != 403 {
		t.Fatalf("bob read metrics: %d", code)
	}
}

func TestAuditChainThroughGuard(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	m.call(m.alice, "/v1/chat/completions", `{"model":"llama"}`)
	m.call(m.bob, "/v1/chat/completions", `{"model":"llama"}`)
	m.call(m.alice, "/api/generate", `{"model":"qwen","stream":false}`)
	m.waitRecords(3)
	if err := audit.Verify(m.dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(m.dir, audit.SpoolFile)
	b, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), `"login":"bob@example.com"`, `"login":"eve@example.com"`, 1)), 0o600)
	if err := audit.Verify(m.dir); !errors.Is(err, audit.ErrTampered) {
		t.Fatalf("edited record: %v", err)
	}
}

var _ = http.StatusOK
