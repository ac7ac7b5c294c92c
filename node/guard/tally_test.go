package guard

import (
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/node/audit"
)

// tallySeeds are payloads upstreams send, and ones that try fastTally's
// edges: escapes, surrogates, invalid UTF-8, type errors, duplicates,
// case-folded keys, numbers at int64's limits, bad syntax.
var tallySeeds = []string{
	`{"id":"c1","object":"chat.completion","created":1,"model":"llama","choices":[{"index":0,"message":{"role":"assistant","content":"The capital of France is Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":14,"total_tokens":26}}`,
	`{"id":"c1","object":"chat.completion.chunk","created":5,"model":"llama","choices":[{"index":0,"delta":{"content":"word "}}]}`,
	`{"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":20,"total_tokens":32}}`,
	`{"choices":[{"delta":{"reasoning_content":"hm\n\"x\"\u00e9\ud83d\ude00","content":null}},null,{"text":"abc"}]}`,
	`{"type":"response.output_text.delta","delta":"he\"llo"}`,
	`{"type":"response.completed","response":{"id":"r","usage":{"input_tokens":3,"output_tokens":4}}}`,
	`{"response":{"usage":null},"usage":{}}`,
	`{"model":"q","message":{"role":"assistant","content":"tok "},"done":false}`,
	`{"model":"q","response":"hi","done":true,"prompt_eval_count":10,"eval_count":5}`,
	`{"done":null,"prompt_eval_count":-3,"eval_count":4}`,
	`{"choices":[{"delta":{"content":"\ud800\u0041 \udc00 \ud800"}}]}`,
	"{\"choices\":[{\"text\":\"\xff\xfe ok \xed\xa0\x80 \xe2\x82\"}]}",
	`{"choices":[{"text":5}]}`, `{"choices":{}}`, `{"usage":{"prompt_tokens":1.5}}`, `{"usage":{"prompt_tokens":"3"}}`,
	`{"usage":{"prompt_tokens":9223372036854775807,"completion_tokens":-9223372036854775808}}`,
	`{"usage":{"prompt_tokens":9223372036854775808}}`, `{"usage":{"prompt_tokens":-9223372036854775809}}`,
	`{"usage":{"prompt_tokens":1e2}}`, `{"usage":{"prompt_tokens":-0}}`, `{"done":1}`, `{"eval_count":true}`,
	`{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":2}}`, `{"choices":[{"text":"a","text":"bb"}]}`,
	`{"Usage":{"prompt_tokens":1}}`, `{"USAGE":{"PROMPT_TOKENS":7}}`, `{"u\u0073age":{"prompt_tokens":1}}`,
	"{\"choice\u017f\":[{\"text\":\"x\"}]}", "{\"usage\":{\"prompt_to\u212aens\":2}}",
	`{"choices":[{"delta":{"content":"x"}}]} x`, `{"choices":[{"delta":{"content":"x"}}]`, `{"a":01}`, `{"a":-}`,
	`{"a":[1,2,{"b":[true,false,null,"s",-1.5e+3,0.0E-1]}]}`, `{"a":tru}`, `{"a":nulls}`, `{"a":"\x01"}`, `{"a":"\q"}`,
	`{"a":"\u12"}`, `{"a" "b"}`, `{,}`, `{"a":1,}`, `[]`, `null`, `"x"`, `5`, ``, `  {}  `, "{}\x00",
	`{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	`{"message":{"content":"a"},"response":null,"message":null}`, `{"message":[]}`, `{"delta":{"x":1}}`, `{"delta":5}`,
	`{"response":{"usage":{"input_tokens":2}},"choices":null}`, `{"response":5}`, `{"type":1}`,
}

func FuzzTally(f *testing.F) {
	for _, s := range tallySeeds {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, payload string, ol bool) {
		fam := llmapi.OpenAI
		if ol {
			fam = llmapi.Ollama
		}
		want := decodeTally(fam, []byte(payload))
		if got, ok := fastTally(fam, []byte(payload)); ok && got != want {
			t.Fatalf("fastTally(%v, %q) = %+v, encoding/json reads %+v", fam, payload, got, want)
		}
		if got := readTally(fam, []byte(payload)); got != want {
			t.Fatalf("readTally(%v, %q) = %+v, encoding/json reads %+v", fam, payload, got, want)
		}
	})
}

// TestFastTallyPath: what upstreams send takes the fast path; what only
// encoding/json reads exactly is left to it.
func TestFastTallyPath(t *testing.T) {
	fast := []string{tallySeeds[0], tallySeeds[1], tallySeeds[2], tallySeeds[3], tallySeeds[4], tallySeeds[5], tallySeeds[7], tallySeeds[8]}
	for _, p := range fast {
		for _, fam := range []llmapi.Family{llmapi.OpenAI, llmapi.Ollama} {
			if _, ok := fastTally(fam, []byte(p)); !ok {
				t.Errorf("fastTally(%v, %s) left it to encoding/json", fam, p)
			}
		}
	}
	slow := []string{`{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":2}}`, `{"Usage":{"prompt_tokens":1}}`,
		`{"u\u0073age":{"prompt_tokens":1}}`, "{\"usage\":{\"prompt_to\u212aens\":2}}"}
	for _, p := range slow {
		if _, ok := fastTally(llmapi.OpenAI, []byte(p)); ok {
			t.Errorf("fastTally(%s) read it itself", p)
		}
	}
	if got := readTally(llmapi.OpenAI, []byte(`{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":2}}`)); got.in != 1 || got.out != 2 || !got.reported {
		t.Errorf("duplicated usage read as %+v, want encoding/json's merge {in:1 out:2}", got)
	}
}

func TestFastTallyAllocs(t *testing.T) {
	for _, s := range tallySeeds[:9] {
		p := []byte(s)
		if n := testing.AllocsPerRun(20, func() { fastTally(llmapi.OpenAI, p); fastTally(llmapi.Ollama, p) }); n != 0 {
			t.Errorf("fastTally(%s): %v allocations", p, n)
		}
	}
}

func BenchmarkTally(b *testing.B) {
	for _, c := range []struct {
		name string
		read func(llmapi.Family, []byte) tally
	}{{"fast", readTally}, {"encoding-json", decodeTally}} {
		b.Run(c.name, func(b *testing.B) {
			whole, chunk := []byte(tallySeeds[0]), []byte(tallySeeds[1])
			b.ReportAllocs()
			for b.Loop() {
				c.read(llmapi.OpenAI, whole)
				c.read(llmapi.OpenAI, chunk)
			}
		})
	}
}

func TestPromptHasherIsHashPrompt(t *testing.T) {
	key := []byte("audit key")
	p := newPromptHasher(key)
	for _, body := range []string{"", "hi", strings.Repeat(`{"model":"llama"}`, 100)} {
		for range 2 { // a pooled state is reset between uses
			if got, want := p.hash([]byte(body)), audit.HashPrompt(key, []byte(body)); got != want {
				t.Fatalf("hash(%q) = %s, audit.HashPrompt: %s", body, got, want)
			}
		}
	}
	if newPromptHasher([]byte("other")).hash([]byte("hi")) == p.hash([]byte("hi")) {
		t.Fatal("the key makes no difference")
	}
}
