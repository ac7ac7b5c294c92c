package guard

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/moatmesh/moat/mesh/promptkey"
	"github.com/moatmesh/moat/policy"
)

// staleUpstream is a model server on raw TCP that answers the first
// request of its first connection, then reads the second request on that
// kept connection and closes it without an answer: the guard's upstream
// client sends that request again on a new connection, its body from
// Request.GetBody. It records every body it reads.
type staleUpstream struct {
	ln     net.Listener
	mu     sync.Mutex
	bodies [][]byte
	conns  int
}

func newStaleUpstream(t *testing.T) *staleUpstream {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &staleUpstream{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns++
			first := u.conns == 1
			u.mu.Unlock()
			go u.serve(nc, first)
		}
	}()
	return u
}

func (u *staleUpstream) serve(nc net.Conn, first bool) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	for n := 0; ; n++ {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(req.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, b)
		u.mu.Unlock()
		if first && n == 1 {
			return // read, then gone before answering
		}
		answer := `{"id":"c1","object":"chat.completion","model":"llama","choices":[{"index":0,"message":{"role":"assistant","content":"use ` + testAWS + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
		fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
	}
}

func (u *staleUpstream) seen() ([][]byte, int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([][]byte(nil), u.bodies...), u.conns
}

// TestScreenBufferLifetime: a redacted request body, and a redacted
// whole answer, live in pooled buffers until their call is done. Released buffers are poisoned here, so a
// release before any of the body's readers is done shows: the resend
// after a stale kept connection (which reads the body again from
// GetBody), and the prompt the audit record keeps, checked after the
// next request reused the pool.
func TestScreenBufferLifetime(t *testing.T) {
	poisonReleased.Store(true)
	t.Cleanup(func() { poisonReleased.Store(false) })
	up := newStaleUpstream(t)
	m := newMesh(t, policy.Limits{}, func(cfg *Config) {
		cfg.Models["llama"] = Upstream{URL: "http://" + up.ln.Addr().String(), Kind: KindOpenAI}
	})
	pub, priv, err := promptkey.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	m.alice.id.PromptKey = pub
	m.withGuard(policy.Guard{Redact: []string{"secrets"}}, policy.Audit{Prompts: "full"})
	var want []string // the redacted contents, in order
	for i, text := range []string{"first key " + testAWS + " here", "second, longer: key " + testAWS + " and more words after it"} {
		body := fmt.Sprintf(`{"model":"llama","messages":[{"role":"user","content":%q}]}`, text)
		st, b := m.call(m.alice, "/v1/chat/completions", body)
		if st != 200 {
			t.Fatalf("request %d: %d %s", i, st, b)
		}
		var ans struct {
			Choices []struct{ Message struct{ Content string } }
		}
		if err := json.Unmarshal([]byte(b), &ans); err != nil || len(ans.Choices) != 1 || ans.Choices[0].Message.Content != "use [REDACTED:aws-access-key]" {
			t.Fatalf("request %d: answer %s (%v), want it redacted", i, b, err)
		}
		want = append(want, string(bytes.ReplaceAll([]byte(text), []byte(testAWS), []byte("[REDACTED:aws-access-key]"))))
	}
	bodies, conns := up.seen()
	if len(bodies) != 3 || conns != 2 {
		t.Fatalf("upstream read %d bodies on %d connections, want 3 on 2 (the second request resent)", len(bodies), conns)
	}
	for i, k := range []int{0, 1, 1} { // body i carries request k's prompt
		if got := content(t, bodies[i]); got != want[k] {
			t.Errorf("upstream body %d: content %q, want %q", i, got, want[k])
		}
	}
	recs := m.waitRecords(2)
	for k, rec := range recs[:2] {
		got, err := promptkey.Open(priv, "u-alice", rec.PromptSealed)
		if err != nil {
			t.Fatalf("record %d: %v", k, err)
		}
		if c := content(t, got); c != want[k] {
			t.Errorf("record %d keeps prompt content %q, want %q", k, c, want[k])
		}
	}
}

// content returns the first message's content of a chat request.
func content(t *testing.T, body []byte) string {
	t.Helper()
	var v struct{ Messages []struct{ Content string } }
	if err := json.Unmarshal(body, &v); err != nil || len(v.Messages) == 0 {
		t.Fatalf("not a chat request (%v): %q", err, body)
	}
	return v.Messages[0].Content
}
