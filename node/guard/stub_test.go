package guard

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// stub is a stand-in model server speaking OpenAI (/v1) and Ollama (/api).
// Its behaviour depends on the model it is asked for:
//
//	"slow": never answers (until the request is cancelled)
//	"drip": streams one chunk every few ms until cancelled
//	"bare": like any other model but never reports usage
//
// Others answer n chunks of "tok " (n = max_tokens / num_predict, default
// 5) with usage prompt 10, completion n.
type stub struct {
	srv       *httptest.Server
	gate      chan struct{} // when set, streams wait on it before their last chunk
	cancelled chan string   // receives the model of every request cancelled mid-answer
	quiet     bool          // do not record requests (benchmarks)
	script    []string      // when set, the answer's text pieces (one per chunk) instead of "tok "
	mu        sync.Mutex
	seen      []seenReq
}

type seenReq struct {
	path   string
	header http.Header
	body   map[string]any
}

func newStub(t testing.TB) *stub {
	s := &stub{cancelled: make(chan string, 16)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stub) last() seenReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) == 0 {
		return seenReq{}
	}
	return s.seen[len(s.seen)-1]
}

func (s *stub) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	json.Unmarshal(b, &body)
	if !s.quiet {
		s.mu.Lock()
		s.seen = append(s.seen, seenReq{r.URL.Path, r.Header.Clone(), body})
		s.mu.Unlock()
	}
	model, _ := body["model"].(string)
	n := 5
	if v, ok := body["max_tokens"].(float64); ok {
		n = int(v)
	}
	if o, ok := body["options"].(map[string]any); ok {
		if v, ok := o["num_predict"].(float64); ok {
			n = int(v)
		}
	}
	stream, _ := body["stream"].(bool)
	if _, ok := body["stream"]; !ok && strings.HasPrefix(r.URL.Path, "/api/") {
		stream = true
	}
	if r.Header.Get("Accept") == "text/event-stream" {
		stream = true // a server that streams whatever the body says
	}
	so, _ := body["stream_options"].(map[string]any)
	a := answer{s: s, w: w, r: r, model: model, n: n, usage: model != "bare", includeUsage: so["include_usage"] == true}
	if s.script != nil {
		a.n = len(s.script)
	}
	switch {
	case model == "slow":
		<-r.Context().Done()
		s.cancelled <- model
	case r.URL.Path == "/api/show":
		fmt.Fprintf(w, `{"modelfile":"FROM %s","details":{"family":"stub"}}`, model)
	case r.URL.Path == "/api/embeddings":
		io.WriteString(w, `{"embedding":[0.5,-0.25]}`)
	case strings.HasPrefix(r.URL.Path, "/api/"):
		a.ollama(stream)
	case stream:
		a.sse()
	default:
		a.whole()
	}
}

type answer struct {
	s                   *stub
	w                   http.ResponseWriter
	r                   *http.Request
	model               string
	n                   int
	usage, includeUsage bool
}

// piece is the text of chunk i.
func (a *answer) piece(i int) string {
	if a.s.script != nil {
		return a.s.script[i]
	}
	return "tok "
}

// text is the whole answer's text.
func (a *answer) text() string {
	if a.s.script != nil {
		return strings.Join(a.s.script, "")
	}
	return strings.Repeat("tok ", a.n)
}

func (a *answer) usageJSON() string {
	return fmt.Sprintf(`{"prompt_tokens":10,"completion_tokens":%d,"total_tokens":%d}`, a.n, 10+a.n)
}

func (a *answer) whole() {
	a.w.Header().Set("Content-Type", "application/json")
	u := ""
	if a.usage {
		u = `,"usage":` + a.usageJSON()
	}
	fmt.Fprintf(a.w, `{"id":"c1","object":"chat.completion","model":%q,"choices":[{"index":0,"message":{"role":"assistant","content":%q}}]%s}`,
		a.model, a.text(), u)
}

// step writes one event and flushes; false when the caller went away.
func (a *answer) step(i int, ev string) bool {
	if i == a.n-1 && a.s.gate != nil {
		<-a.s.gate
	}
	if a.model == "drip" {
		select {
		case <-a.r.Context().Done():
			a.s.cancelled <- a.model
			return false
		case <-tick():
		}
	}
	io.WriteString(a.w, ev)
	a.w.(http.Flusher).Flush()
	return true
}

func (a *answer) sse() {
	a.w.Header().Set("Content-Type", "text/event-stream")
	if a.model == "drip" {
		a.n = 1 << 30
	}
	for i := range a.n {
		if !a.step(i, fmt.Sprintf("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":%q,\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", a.model, a.piece(i))) {
			return
		}
	}
	if a.usage && a.includeUsage {
		fmt.Fprintf(a.w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":%s}\n\n", a.usageJSON())
	}
	io.WriteString(a.w, "data: [DONE]\n\n")
}

func (a *answer) ollama(stream bool) {
	a.w.Header().Set("Content-Type", "application/x-ndjson")
	if !stream {
		a.w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(a.w, `{"model":%q,"message":{"role":"assistant","content":%q},"done":true,"prompt_eval_count":10,"eval_count":%d}`, a.model, a.text(), a.n)
		return
	}
	for i := range a.n {
		if !a.step(i, fmt.Sprintf("{\"model\":%q,\"message\":{\"role\":\"assistant\",\"content\":%q},\"done\":false}\n", a.model, a.piece(i))) {
			return
		}
	}
	fmt.Fprintf(a.w, "{\"model\":%q,\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"prompt_eval_count\":10,\"eval_count\":%d}\n", a.model, a.n)
}
