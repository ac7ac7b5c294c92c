package router

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// Requests go to a node serving the model with the path's API family:
// "llama" is OpenAI's on gpu-a and Ollama's on gpu-b.
func TestRouteByModel(t *testing.T) {
	a, b := newMember(t, 2, "gpu-a", "llama", "qwen@ollama", "nomic@ollama"), newMember(t, 3, "gpu-b", "qwen", "embed", "llama@ollama")
	a.serve(t, nil)
	b.serve(t, nil)
	m := newMesh(t, nil, a, b)
	for path, tc := range map[string]struct{ body, want string }{
		"/v1/chat/completions": {`{"model":"llama","messages":[]}`, "gpu-a: "},
		"/v1/completions":      {`{"model":"qwen","prompt":"x"}`, "gpu-b: "},
		"/v1/embeddings":       {`{"model":"embed","input":"x"}`, "gpu-b: "},
		"/v1/responses":        {`{"model":"llama","input":"x"}`, "gpu-a: "},
		"/api/chat":            {`{"model":"qwen","messages":[]}`, "gpu-a: "},
		"/api/generate":        {`{"model":"llama","prompt":"x"}`, "gpu-b: "},
		"/api/embed":           {`{"model":"nomic","input":"x"}`, "gpu-a: "},
		"/api/embeddings":      {`{"model":"nomic","prompt":"x"}`, "gpu-a: "},
		"/api/show":            {`{"name":"llama"}`, "gpu-b: "},
	} {
		status, got := m.post(t, path, tc.body)
		if status != http.StatusOK || got != tc.want+tc.body {
			t.Errorf("POST %s: %d %q, want 200 %q", path, status, got, tc.want+tc.body)
		}
	}
}

func TestSpreadLoad(t *testing.T) {
	a, b := newMember(t, 2, "gpu-a", "m"), newMember(t, 3, "gpu-b", "m")
	ga, gb := a.serve(t, nil), b.serve(t, nil)
	m := newMesh(t, nil, a, b)
	for range 10 {
		if status, got := m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != http.StatusOK {
			t.Fatalf("%d %s", status, got)
		}
	}
	if ga.count() < 3 || gb.count() < 3 {
		t.Fatalf("10 requests went %d to gpu-a and %d to gpu-b; want them spread", ga.count(), gb.count())
	}
}

func TestSpreadLoadLeastInFlight(t *testing.T) {
	a, b := newMember(t, 2, "gpu-a", "m"), newMember(t, 3, "gpu-b", "m")
	hold := make(chan struct{})
	started := make(chan string, 1)
	slow := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			started <- name
			<-hold
		}
	}
	a.serve(t, slow("gpu-a"))
	b.serve(t, slow("gpu-b"))
	m := newMesh(t, nil, a, b)
	done := make(chan struct{}, 6)
	count := map[string]int{}
	func() {
		defer close(hold)
		// Requests held open one after another: each goes to the node with
		// fewer in flight, so they end up evenly on both.
		for range 6 {
			go func() { m.post(t, "/v1/chat/completions", `{"model":"m"}`); done <- struct{}{} }()
			count[<-started]++
		}
	}()
	for range 6 {
		<-done
	}
	if count["gpu-a"] != 3 || count["gpu-b"] != 3 {
		t.Fatalf("six concurrent requests went %v; want 3 on each node", count)
	}
}

func TestFailoverGuardDown(t *testing.T) {
	a, b := newMember(t, 2, "gpu-a", "m"), newMember(t, 3, "gpu-b", "m")
	gb := b.serve(t, nil) // gpu-a's guard is not listening
	m := newMesh(t, nil, a, b)
	for i := range 6 {
		if status, got := m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != http.StatusOK || !strings.HasPrefix(got, "gpu-b") {
			t.Fatalf("request %d: %d %q, want gpu-b's answer", i, status, got)
		}
	}
	if gb.count() != 6 {
		t.Fatalf("gpu-b saw %d requests, want 6", gb.count())
	}
}

func TestFailoverSlowConnect(t *testing.T) {
	a, b := newMember(t, 2, "gpu-a", "m@ollama"), newMember(t, 3, "gpu-b", "m@ollama")
	b.serve(t, nil)
	m := newMesh(t, func(c *Config) { c.ConnectTimeout = 300 * time.Millisecond }, a, b)
	a.Eng.Close() // gpu-a vanished: packets to it go nowhere
	for i := range 4 {
		if status, got := m.post(t, "/api/chat", `{"model":"m"}`); status != http.StatusOK || !strings.HasPrefix(got, "gpu-b") {
			t.Fatalf("request %d: %d %q, want gpu-b's answer", i, status, got)
		}
	}
}

func TestNoNodeReachable(t *testing.T) {
	a, b := newMember(t, 2, "gpu-a", "m"), newMember(t, 3, "gpu-b", "m")
	m := newMesh(t, nil, a, b) // no guards at all
	status, body := m.post(t, "/v1/chat/completions", `{"model":"m"}`)
	e := openAIError(t, body)
	if status != http.StatusServiceUnavailable || e.Code != "no_node_reachable" ||
		!strings.Contains(e.Message, "gpu-a at 100.64.0.2:80") || !strings.Contains(e.Message, "gpu-b at 100.64.0.3:80") {
		t.Fatalf("%d %s", status, body)
	}
}

func TestRetryOnUpstreamDown(t *testing.T) {
	a, b := newMember(t, 2, "gpu-a", "m"), newMember(t, 3, "gpu-b", "m")
	down := func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":{"message":"inference server down"}}`, http.StatusServiceUnavailable)
	}
	a.serve(t, down)
	b.serve(t, nil)
	m := newMesh(t, nil, a, b)
	for range 4 {
		if status, got := m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != 200 || !strings.HasPrefix(got, "gpu-b") {
			t.Fatalf("%d %q", status, got)
		}
	}
	// With every node down upstream, the guard's own answer is passed on.
	m2 := newMesh(t, nil, newMember(t, 4, "gpu-c", "m"))
	m2.nodes[0].serve(t, down)
	if status, got := m2.post(t, "/v1/chat/completions", `{"model":"m"}`); status != 503 || !strings.Contains(got, "inference server down") {
		t.Fatalf("%d %q", status, got)
	}
}

func TestStreamPassesChunkByChunk(t *testing.T) {
	a := newMember(t, 2, "gpu-a", "m")
	release := make(chan struct{})
	a.serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: {\"n\":1}\n\n"))
		w.(http.Flusher).Flush()
		<-release // the rest only once the caller has seen the first chunk
		w.Write([]byte("data: {\"n\":2}\n\ndata: [DONE]\n\n"))
	})
	m := newMesh(t, nil, a)
	req, _ := http.NewRequest(http.MethodPost, m.srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m","stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: {\"n\":1}\n" {
		t.Fatalf("first chunk: %q, %v", line, err)
	}
	close(release)
	var rest strings.Builder
	if _, err := br.WriteTo(&rest); err != nil {
		t.Fatal(err)
	}
	if rest.String() != "\ndata: {\"n\":2}\n\ndata: [DONE]\n\n" {
		t.Fatalf("rest of stream: %q", rest.String())
	}
}

func TestHeadersStripped(t *testing.T) {
	a := newMember(t, 2, "gpu-a", "m")
	g := a.serve(t, nil)
	m := newMesh(t, nil, a)
	m.post(t, "/v1/chat/completions", `{"model":"m"}`,
		"Authorization", "Bearer sk-forged", "X-Api-Key", "moat_lt_local", "X-Forwarded-For", "10.0.0.1", "X-Moat-User", "ceo@example.com",
		"Forwarded", "for=1.2.3.4", "Cookie", "a=b", "X-Real-IP", "1.2.3.4", "OpenAI-Beta", "assistants=v2")
	h := g.last().Header
	for _, k := range []string{"Authorization", "X-Api-Key", "X-Forwarded-For", "X-Moat-User", "Forwarded", "Cookie", "X-Real-Ip"} {
		if v := h.Get(k); v != "" {
			t.Errorf("guard received %s: %q", k, v)
		}
	}
	if h.Get("OpenAI-Beta") != "assistants=v2" || h.Get("Content-Type") != "application/json" {
		t.Errorf("ordinary headers lost: %v", h)
	}
}

type oaiErr struct{ Message, Type, Code string }

func openAIError(t *testing.T, body string) oaiErr {
	t.Helper()
	var v struct{ Error oaiErr }
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Error.Message == "" {
		t.Fatalf("not an OpenAI error: %q (%v)", body, err)
	}
	return v.Error
}

func ollamaError(t *testing.T, body string) string {
	t.Helper()
	var v struct{ Error string }
	if err := json.Unmarshal([]byte(body), &v); err != nil || v.Error == "" {
		t.Fatalf("not an Ollama error: %q (%v)", body, err)
	}
	return v.Error
}

func TestUnknownModel(t *testing.T) {
	m := newMesh(t, nil, newMember(t, 2, "gpu-a", "llama", "qwen", "phi@ollama"))
	status, body := m.post(t, "/v1/chat/completions", `{"model":"gpt-4"}`)
	e := openAIError(t, body)
	if status != 404 || e.Code != "model_not_found" || !strings.Contains(e.Message, `"gpt-4"`) || !strings.Contains(e.Message, "llama, qwen") {
		t.Fatalf("%d %s", status, body)
	}
	status, body = m.post(t, "/api/chat", `{"model":"gpt-4"}`)
	if msg := ollamaError(t, body); status != 404 || !strings.Contains(msg, "use with it: phi") {
		t.Fatalf("%d %s", status, body)
	}
	// A model of the other family: the path to use instead.
	status, body = m.post(t, "/api/generate", `{"model":"llama"}`)
	if msg := ollamaError(t, body); status != 400 || !strings.Contains(msg, "call /v1/completions instead of /api/generate") {
		t.Fatalf("%d %s", status, body)
	}
	status, body = m.post(t, "/v1/chat/completions", `{"model":"phi"}`)
	if e := openAIError(t, body); status != 400 || e.Code != "wrong_api_family" || !strings.Contains(e.Message, "call /api/chat") {
		t.Fatalf("%d %s", status, body)
	}
	for _, path := range []string{"/v1/models/gpt-4", "/v1/models/phi"} {
		if status, body = m.get(t, path); status != 404 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
	}
}

// Each list holds the models of its family, merged over the nodes.
func TestModelsMerged(t *testing.T) {
	m := newMesh(t, nil, newMember(t, 2, "gpu-a", "llama", "qwen", "phi@ollama"), newMember(t, 3, "gpu-b", "qwen", "embed", "llama@ollama", "gemma@ollama"))
	status, body := m.get(t, "/v1/models")
	var list struct {
		Object string
		Data   []struct{ ID, Object string }
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || status != 200 || list.Object != "list" {
		t.Fatalf("%d %s %v", status, body, err)
	}
	var ids []string
	for _, d := range list.Data {
		ids = append(ids, d.ID)
	}
	if strings.Join(ids, ",") != "embed,llama,qwen" {
		t.Fatalf("/v1/models: %v", ids)
	}
	status, body = m.get(t, "/api/tags")
	var tags struct{ Models []struct{ Name string } }
	if err := json.Unmarshal([]byte(body), &tags); err != nil || status != 200 || len(tags.Models) != 3 || tags.Models[0].Name != "gemma" || tags.Models[1].Name != "llama" || tags.Models[2].Name != "phi" {
		t.Fatalf("/api/tags: %d %s", status, body)
	}
	if status, body = m.get(t, "/v1/models/qwen"); status != 200 || !strings.Contains(body, `"id":"qwen"`) {
		t.Fatalf("/v1/models/qwen: %d %s", status, body)
	}
}

func TestLoginRequired(t *testing.T) {
	a := newMember(t, 2, "gpu-a", "m")
	a.serve(t, nil)
	m := newMesh(t, nil, a)
	m.router.SetLoginRequired("the coordinator refused this device's credential")
	status, body := m.post(t, "/v1/chat/completions", `{"model":"m"}`)
	if e := openAIError(t, body); status != 401 || e.Code != "login_required" || !strings.Contains(e.Message, "run `moat login`") {
		t.Fatalf("%d %s", status, body)
	}
	if status, body = m.get(t, "/api/tags"); status != 401 || !strings.Contains(ollamaError(t, body), "moat login") {
		t.Fatalf("%d %s", status, body)
	}
	m.router.SetLoginRequired("")
	if status, _ = m.post(t, "/v1/chat/completions", `{"model":"m"}`); status != 200 {
		t.Fatalf("after a new login: %d", status)
	}
	nm := m.client.netmap(a)
	nm.Self.Identity.Expiry = time.Now().Add(-time.Minute)
	m.router.SetNetMap(nm)
	status, body = m.post(t, "/v1/chat/completions", `{"model":"m"}`)
	if e := openAIError(t, body); status != 401 || !strings.Contains(e.Message, "expired") {
		t.Fatalf("expired: %d %s", status, body)
	}
}

func TestRefusals(t *testing.T) {
	a := newMember(t, 2, "gpu-a", "m")
	a.serve(t, nil)
	m := newMesh(t, func(c *Config) { c.MaxBodyBytes, c.Token = 1024, testToken }, a)
	for name, tc := range map[string]struct {
		method, path, body string
		hdr                []string
		status             int
		want               string
	}{
		"bad json":     {"POST", "/v1/chat/completions", `{"model":`, nil, 400, "ends early"},
		"no model":     {"POST", "/api/generate", `{"prompt":"x"}`, nil, 400, `no \"model\"`},
		"folded key":   {"POST", "/v1/chat/completions", `{"model":"m","Model":"x"}`, nil, 400, "only in case"},
		"too large":    {"POST", "/v1/chat/completions", `{"model":"m","x":"` + strings.Repeat("a", 2000) + `"}`, nil, 413, "limit of 1024"},
		"wrong method": {"GET", "/v1/chat/completions", "", nil, 405, "wants POST"},
		"unknown path": {"POST", "/v1/images/generations", `{"model":"m"}`, nil, 404, "not an API path"},
		"foreign host": {"GET", "/v1/models", "", []string{"Host", "evil.example"}, 403, "only answers programs on this device"},
		"web page":     {"POST", "/v1/chat/completions", `{"model":"m"}`, []string{"Origin", "https://evil.example"}, 403, "localhost"},
	} {
		req, _ := http.NewRequest(tc.method, m.srv.URL+tc.path, strings.NewReader(tc.body))
		for i := 0; i+1 < len(tc.hdr); i += 2 {
			if tc.hdr[i] == "Host" {
				req.Host = tc.hdr[i+1]
			}
			req.Header.Set(tc.hdr[i], tc.hdr[i+1])
		}
		status, body := do(t, req)
		if status != tc.status || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s; want %d with %q", name, status, body, tc.status, tc.want)
		}
	}
	// A page served from this machine may call the endpoint, with the
	// local API token (a browser proves no user: callers_test.go).
	if status, body := m.post(t, "/v1/chat/completions", `{"model":"m"}`, "Origin", "http://localhost:3000", "Authorization", "Bearer "+testToken); status != 200 {
		t.Errorf("local origin with the token: %d %s", status, body)
	}
	if status, _ := m.post(t, "/v1/chat/completions", `{"model":"m"}`, "Origin", "http://localhost:3000"); status != 401 {
		t.Errorf("local origin without the token: %d, want 401", status)
	}
}

func TestNotConnectedAndClosed(t *testing.T) {
	m := newMesh(t, nil, newMember(t, 2, "gpu-a", "m"))
	m.router.SetNetMap(nil)
	status, body := m.post(t, "/v1/chat/completions", `{"model":"m"}`)
	if e := openAIError(t, body); status != 503 || e.Code != "not_connected" {
		t.Fatalf("%d %s", status, body)
	}
	m.router.SetNetMap(&wire.NetMap{})
	m.router.Close()
	if status, _ = m.get(t, "/v1/models"); status != 503 {
		t.Fatalf("after Close: %d", status)
	}
}
