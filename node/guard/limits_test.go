package guard

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/policy"
)

func TestRPMBitesAtTheLimit(t *testing.T) {
	m := newMesh(t, policy.Limits{RPM: 3}, nil)
	for i := range 3 {
		if code, body := m.call(m.alice, "/v1/chat/completions", `{"model":"llama"}`); code != 200 {
			t.Fatalf("request %d: %d %s", i+1, code, body)
		}
	}
	resp := m.post(m.alice, "/v1/chat/completions", `{"model":"llama"}`)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("4th request: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The third request's record may land after the refusal's: it is
	// written when its answer has gone out, the refusal's at once.
	limited := 0
	for _, r := range m.waitRecords(4) {
		if r.Decision == audit.DecisionLimit {
			limited++
			if r.Reason != reasonRPM {
				t.Errorf("refusal for %q, want %q", r.Reason, reasonRPM)
			}
		}
	}
	if limited != 1 {
		t.Fatalf("%d records of a refusal by the limit, want 1", limited)
	}
}

// A request reserves its prompt (32 bytes: 8 tokens) and its answer at
// full length before it goes upstream, and is refused when that does not
// fit what is left; it then uses 10+5.
func TestTPMBitesAtTheLimit(t *testing.T) {
	m := newMesh(t, policy.Limits{TPM: 30}, nil)
	const small, large = `{"model":"llama","max_tokens":5}`, `{"model":"llama","max_tokens":10}`
	if code, out := m.call(m.alice, "/v1/chat/completions", small); code != 200 {
		t.Fatalf("1st request: %d %s", code, out)
	}
	m.waitRecords(1) // settled as the request ends: 15 left
	if code, out := m.call(m.alice, "/v1/chat/completions", large); code != 429 || !strings.Contains(out, reasonTPM) || !strings.Contains(out, "may use up to 19 tokens") || !strings.Contains(out, "15 are left") {
		t.Fatalf("request reserving 19: %d %s", code, out)
	}
	if code, out := m.call(m.alice, "/v1/chat/completions", small); code != 200 {
		t.Fatalf("request reserving 13: %d %s", code, out)
	}
	m.waitRecords(3)
	if code, out := m.call(m.alice, "/v1/chat/completions", small); code != 429 || !strings.Contains(out, reasonTPM) {
		t.Fatalf("4th request: %d %s", code, out)
	}
}

func TestTokensPerDay(t *testing.T) {
	m := newMesh(t, policy.Limits{TokensPerDay: 20}, nil)
	const body = `{"model":"llama","max_tokens":5}` // reserves 8+5, uses 10+5
	m.call(m.alice, "/v1/chat/completions", body)
	m.waitRecords(1)
	code, out := m.call(m.alice, "/v1/chat/completions", body)
	if code != 429 || !strings.Contains(out, "20 tokens a day") || !strings.Contains(out, "up to 13 tokens") || !strings.Contains(out, "5 are left") || !strings.Contains(out, "resets at 00:00 UTC") {
		t.Fatalf("%d %s", code, out)
	}
}

func TestConcurrencyBitesAtTheLimit(t *testing.T) {
	m := newMesh(t, policy.Limits{Concurrency: 2}, nil)
	m.up.gate = make(chan struct{})
	for i := range 2 {
		resp := m.post(m.alice, "/v1/chat/completions", chatBody)
		defer resp.Body.Close()
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %d %v", i+1, resp.StatusCode, err)
		}
	}
	if code, body := m.call(m.alice, "/v1/chat/completions", chatBody); code != 429 || !strings.Contains(body, "2 requests at once") {
		t.Fatalf("3rd concurrent request: %d %s", code, body)
	}
	close(m.up.gate)
	m.waitRecords(3)
	if code, _ := m.call(m.alice, "/v1/chat/completions", `{"model":"llama"}`); code != 200 {
		t.Fatalf("after the streams ended: %d", code)
	}
}

func TestMaxTokensCapped(t *testing.T) {
	m := newMesh(t, policy.Limits{MaxTokens: 8}, nil)
	for _, tc := range []struct{ path, body, key string }{
		{"/v1/chat/completions", `{"model":"llama","max_tokens":100}`, "max_tokens"},
		{"/v1/chat/completions", `{"model":"llama"}`, "max_tokens"},
		{"/v1/chat/completions", `{"model":"llama","max_completion_tokens":50}`, "max_completion_tokens"},
		{"/v1/completions", `{"model":"llama","max_tokens":9}`, "max_tokens"},
		{"/api/generate", `{"model":"qwen","options":{"num_predict":-1,"temperature":0.5}}`, llmapi.NumPredict},
	} {
		if code, body := m.call(m.alice, tc.path, tc.body); code != 200 {
			t.Fatalf("%s: %d %s", tc.body, code, body)
		}
		b := m.up.last().body
		got := b[tc.key]
		if tc.key == llmapi.NumPredict {
			o := b["options"].(map[string]any)
			got = o["num_predict"]
			if o["temperature"] != 0.5 {
				t.Errorf("other options lost: %v", o)
			}
		}
		if got != 8.0 {
			t.Errorf("%s: upstream got %s=%v, want 8", tc.body, tc.key, got)
		}
	}
	m.call(m.alice, "/v1/chat/completions", `{"model":"llama","max_tokens":3}`)
	if got := m.up.last().body["max_tokens"]; got != 3.0 {
		t.Errorf("a smaller max_tokens was changed: %v", got)
	}
}

// A stream whose use passes what its limits had left when it started is
// cut. The answer fits its reservation by its length in tokens, but
// without usage reports the guard estimates 2 tokens for each 7-byte
// chunk: 12 for the prompt, then the 25th chunk passes 60.
func TestStreamCutPastTokenLimit(t *testing.T) {
	m := newMesh(t, policy.Limits{TPM: 60}, nil)
	m.up.script = split(strings.Repeat("tokens ", 40), 40)
	body := `{"model":"bare","stream":true,"max_tokens":40}` // no usage: estimates
	code, out := m.call(m.alice, "/v1/chat/completions", body)
	evs := events(strings.NewReader(out))
	last := evs[len(evs)-1]
	if code != 200 || !strings.Contains(last, `"code":"tpm_exceeded"`) || !strings.Contains(last, "the answer was cut") {
		t.Fatalf("%d, last event %q", code, last)
	}
	if n := len(evs) - 1; n != 24 {
		t.Fatalf("%d chunks before the cut, want 24", n)
	}
	if r := m.waitRecords(1)[0]; r.Reason != reasonTPM || !r.Estimated || r.TokensOut != 50 {
		t.Fatalf("%+v", r)
	}
}

func TestDeadAndSlowUpstream(t *testing.T) {
	m := newMesh(t, policy.Limits{}, func(c *Config) { c.UpstreamHeaderTimeout = 500 * time.Millisecond })
	if code, body := m.call(m.alice, "/v1/chat/completions", `{"model":"dead"}`); code != 502 || !strings.Contains(body, "not reachable") {
		t.Fatalf("dead: %d %s", code, body)
	}
	slow := make(chan string)
	go func() {
		_, body := m.call(m.alice, "/v1/chat/completions", `{"model":"slow"}`)
		slow <- body
	}()
	// The slow model holds nobody else up.
	if code, _ := m.call(m.bob, "/v1/models", ""); code != 405 {
		t.Fatalf("bob meanwhile: %d", code)
	}
	if code, _ := m.call(m.alice, "/v1/chat/completions", `{"model":"llama"}`); code != 200 {
		t.Fatalf("llama meanwhile: %d", code)
	}
	select {
	case body := <-slow:
		if !strings.Contains(body, "did not answer within 500ms") || !strings.Contains(body, `"code":"upstream_timeout"`) {
			t.Fatalf("slow: %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("slow upstream request never ended")
	}
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	ctx, cancel := context.WithCancel(ctxTimeout(t))
	req, _ := http.NewRequestWithContext(ctx, "POST", m.url+"/v1/chat/completions", strings.NewReader(`{"model":"drip","stream":true}`))
	resp, err := m.alice.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case model := <-m.up.cancelled:
		if model != "drip" {
			t.Fatal(model)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request went on after the caller left")
	}
	if r := m.waitRecords(1)[0]; r.Status != 499 {
		t.Fatalf("%+v", r)
	}
}

// An upstream that streams an answer the request did not ask to stream is
// relayed and counted as a stream: read as a whole answer, it would count
// no tokens and slip past the token limits.
func TestUnaskedStreamIsCounted(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	code, body := m.call(m.alice, "/v1/chat/completions", `{"model":"llama"}`, "Accept", "text/event-stream")
	if code != 200 || !strings.Contains(body, "data: ") {
		t.Fatalf("%d %s", code, body)
	}
	if r := m.waitRecords(1)[0]; r.TokensOut != 5 || !r.Stream {
		t.Errorf("unasked stream recorded with %d tokens out, stream %v; want 5 (estimated from its text), true", r.TokensOut, r.Stream)
	}
}

// The local limiter's arithmetic: a reservation is taken from the minute
// and the day at once, settling puts back what was not used (or takes
// more), a request larger than a limit allows at all is told so, a day
// that is full only of reservations in flight says to retry soon, and a
// request admitted yesterday settles against yesterday.
func TestLocalLimiterReservations(t *testing.T) {
	l := newLocalLimiter()
	g := &policy.GrantRule{ID: "grants[0]", Limits: policy.Limits{TPM: 1000, TokensPerDay: 1500}}
	day := time.Date(2026, 12, 6, 23, 58, 0, 0, time.UTC)
	reserve := func(tokens int64, now time.Time) (reservation, *refusal) {
		t.Helper()
		if r := l.hold("u", []*policy.GrantRule{g}, now); r != nil {
			t.Fatalf("hold: %+v", r)
		}
		return l.reserve("u", g, tokens, policy.Price{}, now, true)
	}
	a, r := reserve(600, day)
	if r != nil {
		t.Fatalf("600 of 1000: %+v", r)
	}
	if b, why := a.budget(); b != 1000 || why != reasonTPM {
		t.Fatalf("budget %d %s, want what was left when it started", b, why)
	}
	if _, r := reserve(500, day); r == nil || r.reason != reasonTPM || r.want != 500 || r.left != 400 || r.never {
		t.Fatalf("500 with 400 left: %+v", r)
	}
	if _, r := reserve(1001, day); r == nil || !r.never {
		t.Fatalf("more than a minute's allowance: %+v", r)
	}
	a.settle(100, 0) // 500 not used: back in the minute and the day
	b, r := reserve(900, day)
	if r != nil {
		t.Fatalf("900 after settling: %+v", r)
	}
	st := l.states[limitKey{"u", "grants[0]"}]
	if st.dayTokens != 1000 || st.dayReserved != 900 {
		t.Fatalf("day %d used and reserved, %d reserved; want 1000, 900", st.dayTokens, st.dayReserved)
	}
	// The minute refills; the day has 500 left, all of them behind b.
	later := day.Add(time.Minute)
	if _, r := reserve(600, later); r == nil || r.reason != reasonDay || r.retry != time.Second {
		t.Fatalf("600 with the day's rest reserved in flight: %+v", r)
	}
	dayOnly := &policy.GrantRule{ID: "grants[1]", Limits: policy.Limits{TokensPerDay: 1500}}
	if _, r := l.reserve("u", dayOnly, 1501, policy.Price{}, later, false); r == nil || r.reason != reasonDay || !r.never {
		t.Fatalf("more than the day allows: %+v", r)
	}
	// b settles after midnight: it counts to the day it started.
	next := day.Add(3 * time.Minute)
	c, r := reserve(400, next)
	if r != nil {
		t.Fatalf("new day: %+v", r)
	}
	b.settle(2000, 0)
	c.settle(400, 0)
	if st.dayTokens != 400 || st.dayReserved != 0 || st.inflight != 0 {
		t.Fatalf("new day: %d used, %d reserved, %d in flight", st.dayTokens, st.dayReserved, st.inflight)
	}
}
