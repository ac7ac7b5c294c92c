package guard

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// stub is a stand-in model server speaking OpenAI (/v1) and Ollama (/api)
// the way the real servers read a request:
//
//   - the answer-length bound is llama-server's: n_predict before
//     max_tokens before max_completion_tokens (-1: none); /v1/responses
//     reads max_output_tokens; Ollama options.num_predict (≤ 0: none);
//   - an answer stops at its natural end (eos tokens, default 5) or at
//     the bound, whichever comes first; with fill, vLLM's ignore_eos or
//     min_tokens it goes on to the bound (no bound: 1000 tokens, standing
//     for "until the context is full");
//   - n answers (choices) per prompt, best_of sequences generated when
//     larger, and a batched /v1/completions "prompt" answered per
//     prompt; usage bills 10 prompt tokens a prompt and every generated
//     sequence.
//
// Its behaviour also depends on the model it is asked for:
//
//	"slow": never answers (until the request is cancelled)
//	"drip": streams one chunk every few ms until cancelled
//	"bare": like any other model but never reports usage
type stub struct {
	srv       *httptest.Server
	gate      chan struct{} // when set, streams wait on it before their last chunk
	cancelled chan string   // receives the model of every request cancelled mid-answer
	quiet     bool          // do not record requests (benchmarks)
	script    []string      // when set, the answer's text pieces (one per chunk) instead of "tok "
	eos       int           // an answer's natural length in tokens; 0: 5
	fill      bool          // answers go on to the length bound
	mu        sync.Mutex
	seen      []seenReq
}

type seenReq struct {
	path   string
	header http.Header
	body   map[string]any
	raw    []byte
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
		s.seen = append(s.seen, seenReq{r.URL.Path, r.Header.Clone(), body, b})
		s.mu.Unlock()
	}
	model, _ := body["model"].(string)
	n := s.length(r.URL.Path, body)
	stream, _ := body["stream"].(bool)
	if _, ok := body["stream"]; !ok && strings.HasPrefix(r.URL.Path, "/api/") {
		stream = true
	}
	if r.Header.Get("Accept") == "text/event-stream" {
		stream = true // a server that streams whatever the body says
	}
	so, _ := body["stream_options"].(map[string]any)
	a := answer{s: s, w: w, r: r, model: model, n: n, usage: model != "bare", includeUsage: so["include_usage"] == true}
	a.choices, a.sequences, a.prompts = choices(body)
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

// length is the answer length the server would produce for body at path.
func (s *stub) length(path string, body map[string]any) int {
	bound := -1
	num := func(m map[string]any, k string) bool {
		v, has := m[k].(float64)
		if has {
			bound = int(v)
		}
		return has
	}
	switch {
	case strings.HasPrefix(path, "/api/"):
		if o, has := body["options"].(map[string]any); has && num(o, "num_predict") && bound <= 0 {
			bound = -1
		}
	case path == "/v1/responses":
		num(body, "max_output_tokens")
	case !num(body, "n_predict") && !num(body, "max_tokens"): // llama-server's order
		num(body, "max_completion_tokens")
	}
	if bound < 0 {
		bound = 1000 // no bound: until the context is full
	}
	n := cmp.Or(s.eos, 5)
	if s.script != nil {
		n = len(s.script)
	}
	if mt, has := body["min_tokens"].(float64); has {
		n = max(n, int(mt))
	}
	if s.fill || body["ignore_eos"] == true {
		return bound
	}
	return min(n, bound)
}

// choices reads n, best_of and a batched prompt: the answers returned,
// the sequences generated for each prompt, and the prompts.
func choices(body map[string]any) (returned, sequences, prompts int) {
	returned, prompts = 1, 1
	if v, ok := body["n"].(float64); ok {
		returned = int(v)
	}
	sequences = returned
	if v, ok := body["best_of"].(float64); ok {
		sequences = max(sequences, int(v))
	}
	if p, ok := body["prompt"].([]any); ok && len(p) > 0 {
		if _, tokens := p[0].(float64); !tokens {
			prompts = len(p)
		}
	}
	return returned * prompts, sequences, prompts
}

type answer struct {
	s                   *stub
	w                   http.ResponseWriter
	r                   *http.Request
	model               string
	n                   int // tokens in each answer
	choices             int // answers returned (n times the prompts)
	sequences, prompts  int // generated per prompt; prompts
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
	in, out := 10*a.prompts, a.n*a.sequences*a.prompts
	if a.r.URL.Path == "/v1/responses" {
		return fmt.Sprintf(`{"input_tokens":%d,"output_tokens":%d,"total_tokens":%d}`, in, out, in+out)
	}
	return fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}`, in, out, in+out)
}

func (a *answer) whole() {
	a.w.Header().Set("Content-Type", "application/json")
	u := ""
	if a.usage {
		u = `,"usage":` + a.usageJSON()
	}
	if a.r.URL.Path == "/v1/responses" {
		fmt.Fprintf(a.w, `{"id":"r1","object":"response","model":%q,"output":[{"type":"message","content":[{"type":"output_text","text":%q}]}]%s}`, a.model, a.text(), u)
		return
	}
	var ch []string
	for i := range a.choices {
		ch = append(ch, fmt.Sprintf(`{"index":%d,"message":{"role":"assistant","content":%q}}`, i, a.text()))
	}
	fmt.Fprintf(a.w, `{"id":"c1","object":"chat.completion","model":%q,"choices":[%s]%s}`, a.model, strings.Join(ch, ","), u)
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
		var ev strings.Builder
		for c := range a.choices {
			fmt.Fprintf(&ev, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":%q,\"choices\":[{\"index\":%d,\"delta\":{\"content\":%q}}]}\n\n", a.model, c, a.piece(i))
		}
		if !a.step(i, ev.String()) {
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

// seenAll returns the requests received so far.
func (s *stub) seenAll() []seenReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenReq(nil), s.seen...)
}
