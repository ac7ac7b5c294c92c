package guard

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// outputMesh is a mesh whose models llama (OpenAI) and qwen (Ollama)
// allow answers of 50 tokens, two per request, under a grant with lim,
// in front of a stub whose answers run to their length bound: the worst
// case a caller can ask for is what it gets.
func outputMesh(t *testing.T, lim policy.Limits) *mesh {
	m := newMesh(t, lim, nil)
	m.up.fill = true
	m.rules.Models = []wire.ModelRule{{Model: "llama", MaxOutputTokens: 50, MaxChoices: 2}, {Model: "qwen", MaxOutputTokens: 50}}
	m.apply(2)
	return m
}

// Every field that multiplies or lengthens the answers is capped or
// refused: what the stand-in server (reading them as llama-server, vLLM
// and Ollama do) received and the tokens billed show it.
func TestOutputFieldsCappedOrRefused(t *testing.T) {
	m := outputMesh(t, policy.Limits{})
	const chat, compl, resp, gen = "/v1/chat/completions", "/v1/completions", "/v1/responses", "/api/generate"
	calls := 0
	for _, tc := range []struct {
		path, body string
		code       int
		want       string         // in the refusal, or the raw body upstream when it starts with '{'
		up         map[string]any // fields the upstream received (nil: absent)
		in, out    int64          // tokens billed
	}{
		{chat, `{"model":"llama","n":50,"max_tokens":50}`, 400, `\"n\" asks for 50 answers; the most model \"llama\" allows in one request is 2`, nil, 0, 0},
		{chat, `{"model":"llama","n":2}`, 200, "", map[string]any{"n": 2.0, "max_tokens": 50.0}, 10, 100},
		{chat, `{"model":"llama","n":0}`, 400, `\"n\" must be a positive integer`, nil, 0, 0},
		{compl, `{"model":"llama","prompt":"hi","best_of":5}`, 400, `\"best_of\" asks for 5 answers`, nil, 0, 0},
		{compl, `{"model":"llama","prompt":"hi","best_of":2}`, 200, "", map[string]any{"best_of": 2.0, "max_tokens": 50.0}, 10, 100},
		{chat, `{"model":"llama","max_tokens":100000}`, 200, "", map[string]any{"max_tokens": 50.0}, 10, 50},
		{chat, `{"model":"llama","max_tokens":7}`, 200, "", map[string]any{"max_tokens": 7.0}, 10, 7},
		{chat, `{"model":"llama","max_completion_tokens":100000}`, 200, "", map[string]any{"max_completion_tokens": 50.0, "max_tokens": 50.0}, 10, 50},
		{chat, `{"model":"llama","n_predict":-1}`, 200, "", map[string]any{"n_predict": 50.0, "max_tokens": 50.0}, 10, 50},
		{chat, `{"model":"llama","max_tokens":10,"n_predict":100000}`, 200, "", map[string]any{"n_predict": 50.0, "max_tokens": 10.0}, 10, 50},
		{compl, `{"model":"llama","prompt":"hi","n_predict":100000}`, 200, "", map[string]any{"n_predict": 50.0, "max_tokens": 50.0}, 10, 50},
		{chat, `{"model":"llama","max_tokens":20,"min_tokens":1000}`, 200, "", map[string]any{"min_tokens": 20.0, "max_tokens": 20.0}, 10, 20},
		{chat, `{"model":"llama","ignore_eos":true}`, 400, `\"ignore_eos\": true makes the model write`, nil, 0, 0},
		{chat, `{"model":"llama","ignore_eos":false}`, 200, "", map[string]any{"ignore_eos": false, "max_tokens": 50.0}, 10, 50},
		{compl, `{"model":"llama","prompt":["a","b","c"]}`, 400, `\"prompt\" is a batch of 3 prompts, each answered on its own: 3 answers in all`, nil, 0, 0},
		{compl, `{"model":"llama","prompt":["a","b"],"n":2}`, 400, `\"prompt\" is a batch of 2 prompts, each answered on its own: 4 answers in all`, nil, 0, 0},
		{compl, `{"model":"llama","prompt":["a","b"]}`, 200, "", map[string]any{"max_tokens": 50.0}, 20, 100},
		{compl, `{"model":"llama","prompt":[1,2,3]}`, 200, "", map[string]any{"max_tokens": 50.0}, 10, 50},
		{resp, `{"model":"llama","input":"hi","max_output_tokens":100000}`, 200, "", map[string]any{"max_output_tokens": 50.0}, 10, 50},
		{resp, `{"model":"llama","input":"hi"}`, 200, "", map[string]any{"max_output_tokens": 50.0}, 10, 50},
		{resp, `{"model":"llama","input":"hi","background":true}`, 400, `\"background\": true runs the response`, nil, 0, 0},
		{"/api/chat", `{"model":"qwen","stream":false,"options":{"num_predict":-1}}`, 200, "", map[string]any{"options": map[string]any{"num_predict": 50.0}}, 10, 50},
		{gen, `{"model":"qwen","stream":false,"options":{"num_predict":100000,"temperature":0}}`, 200, "", map[string]any{"options": map[string]any{"num_predict": 50.0, "temperature": 0.0}}, 10, 50},
		{gen, `{"model":"qwen","stream":false}`, 200, "", map[string]any{"options": map[string]any{"num_predict": 50.0}}, 10, 50},
		{gen, `{"model":"qwen","stream":false,"keep_alive":-1}`, 200, "", map[string]any{"keep_alive": nil}, 10, 50},
		{gen, `{"model":"qwen","raw":true}`, 400, `\"raw\": true sends the prompt past the model's template`, nil, 0, 0},
		{gen, `{"model":"qwen","template":"{{ .Prompt }}"}`, 400, `\"template\" replaces the model's prompt template`, nil, 0, 0},
		{gen, `{"model":"qwen","options":{"num_ctx":131072}}`, 400, `\"options.num_ctx\" changes how the model server loads the model`, nil, 0, 0},
		{"/api/embed", `{"model":"qwen","input":"x","options":{"num_gpu":0}}`, 400, `\"options.num_gpu\" changes how`, nil, 0, 0},
		{gen, `{"model":"qwen","options":{"Num_ctx":131072}}`, 400, `differs from \"num_ctx\" only in case`, nil, 0, 0},
		{chat, `{"model":"llama","N":50}`, 400, `differs from \"n\" only in case`, nil, 0, 0},
		// Everything else reaches the server byte for byte.
		{chat, `{ "model": "llama",  "messages":[{"role":"user","content":"<b>&</b>"}], "max_tokens" : 900 ,"x":{"n":99} }`, 200,
			`{ "model": "llama",  "messages":[{"role":"user","content":"<b>&</b>"}], "max_tokens" : 50 ,"x":{"n":99} }`, nil, 10, 50},
	} {
		seen := len(m.up.seenAll())
		code, got := m.call(m.alice, tc.path, tc.body)
		calls++
		rec := m.waitRecords(calls)[calls-1] // one record a call, the last one's last

		if code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.path, tc.body, code, got, tc.code)
			continue
		}
		if code != 200 {
			if !strings.Contains(got, tc.want) || len(m.up.seenAll()) != seen {
				t.Errorf("%s %s: %s (upstream called: %v), want %q", tc.path, tc.body, got, len(m.up.seenAll()) != seen, tc.want)
			}
			continue
		}
		up := m.up.last()
		if tc.want != "" && string(up.raw) != tc.want {
			t.Errorf("%s went upstream as\n%s, want\n%s", tc.body, up.raw, tc.want)
		}
		for k, v := range tc.up {
			if !sameJSON(up.body[k], v) {
				t.Errorf("%s: upstream got %s=%v, want %v (body %s)", tc.body, k, up.body[k], v, up.raw)
			}
		}
		if rec.TokensIn != tc.in || rec.TokensOut != tc.out {
			t.Errorf("%s: billed %d in, %d out; want %d, %d", tc.body, rec.TokensIn, rec.TokensOut, tc.in, tc.out)
		}
	}
}

func sameJSON(a, b any) bool {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if !aok || !bok {
		return a == b
	}
	if len(am) != len(bm) {
		return false
	}
	for k, v := range bm {
		if !sameJSON(am[k], v) {
			return false
		}
	}
	return true
}

// Answers multiply the reservation: two answers of 50 need 100 tokens
// beside the prompt, more than a 100-token minute allows at all.
func TestAnswersMultiplyTheReservation(t *testing.T) {
	m := outputMesh(t, policy.Limits{TPM: 100})
	code, got := m.call(m.alice, "/v1/chat/completions", `{"model":"llama","n":2}`)
	if code != 429 || !strings.Contains(got, "may use up to 106 tokens") || !strings.Contains(got, "more than that allows at all") {
		t.Fatalf("%d %s", code, got)
	}
	if code, got := m.call(m.alice, "/v1/chat/completions", `{"model":"llama","n":2,"max_tokens":40}`); code != 200 {
		t.Fatalf("two answers of 40: %d %s", code, got)
	}
	// Ollama's callers get Ollama's error shape.
	m = outputMesh(t, policy.Limits{TPM: 40})
	code, got = m.call(m.alice, "/api/generate", `{"model":"qwen","prompt":"hi"}`)
	if code != 429 || !strings.HasPrefix(got, `{"error":"alice@example.com may use 40 tokens a minute under grants[0]; this request may use up to 58 tokens`) {
		t.Fatalf("ollama: %d %s", code, got)
	}
}

// The review's test: tokensPerDay 1000 and 30 requests at once used to
// all pass (3,465 tokens billed). Each now reserves its worst case first
// (a 20-token prompt and one answer of up to 100), so only what fits is
// admitted while the others are in flight, and the day's bill stays
// within the limit.
func TestParallelRequestsAdmitOnlyWhatFits(t *testing.T) {
	m := outputMesh(t, policy.Limits{TokensPerDay: 1000})
	m.rules.Models[0].MaxOutputTokens = 100
	m.apply(3)
	// Admitted streams wait before their last chunk, so all are in flight.
	m.up.gate = make(chan struct{})
	// 80 bytes: a prompt of 20 tokens.
	const body = `{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	const parallel, fit = 30, 1000 / (20 + 100)
	codes := make(chan int, parallel)
	var admitted sync.WaitGroup
	var open []*http.Response
	var mu sync.Mutex
	for range parallel {
		go func() {
			resp := m.post(m.alice, "/v1/chat/completions", body)
			if resp.StatusCode != 200 {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			} else {
				bufio.NewReader(resp.Body).ReadString('\n') // the first chunk: admitted and answering
				mu.Lock()
				open = append(open, resp)
				mu.Unlock()
			}
			codes <- resp.StatusCode
		}()
	}
	got := map[int]int{}
	for range parallel {
		got[<-codes]++
	}
	if got[200] != fit || got[429] != parallel-fit {
		t.Fatalf("statuses %v, want %d admitted and %d refused", got, fit, parallel-fit)
	}
	close(m.up.gate)
	for _, resp := range open {
		admitted.Go(func() { io.Copy(io.Discard, resp.Body); resp.Body.Close() })
	}
	admitted.Wait()
	var billed int64
	for _, r := range m.waitRecords(parallel) {
		billed += r.TokensIn + r.TokensOut
		if r.Status == 429 && r.Reason != reasonDay {
			t.Errorf("refused for %q", r.Reason)
		}
	}
	if billed > 1000 || billed != fit*(10+100) {
		t.Fatalf("%d tokens billed, want %d (≤ 1000)", billed, fit*110)
	}
	// Settled to the real use, the rest of the day is free again.
	if code, out := m.call(m.alice, "/v1/chat/completions", `{"model":"llama","max_tokens":5}`); code != 200 {
		t.Fatalf("after the burst: %d %s", code, out)
	}
}
