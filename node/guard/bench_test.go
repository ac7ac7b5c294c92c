package guard

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/policy"
)

// benchGuard runs a guard on 127.0.0.1 in front of a quiet stub, with a
// realistic policy (limits, a max_tokens cap, prompt hashes) and the
// audit spool on. The caller's netmap address is 127.0.0.1, so the
// difference to the direct path is the guard alone, without WireGuard.
func benchGuard(b *testing.B) (guardURL, directURL string) {
	up := newStub(b)
	up.quiet, up.fill = true, true
	spool, err := audit.Open(b.TempDir(), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { spool.Close() })
	g, err := New(Config{Models: map[string]Upstream{"llama": {URL: up.srv.URL, Kind: KindOpenAI}}, NodeName: "bench", Audit: spool, AuditKey: []byte("k")})
	if err != nil {
		b.Fatal(err)
	}
	priv, _ := key.NewPrivate()
	lim := wire.Limits{RPM: 1 << 30, TPM: 1 << 30, Concurrency: 64, TokensPerDay: 1 << 60, MaxTokens: 4096}
	nm := &wire.NetMap{Seq: 1,
		Rules: &wire.NodeRules{Grants: []wire.GrantRule{{ID: "grants[0]", MFA: wire.Duration(12 * time.Hour), Limits: lim, Audit: wire.AuditRules{Prompts: "hash"}}}},
		Peers: []wire.Peer{{Key: priv.Public(), Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
			Identity: wire.Identity{UserID: "u1", Login: "alice@example.com", DeviceID: "d1", LastMFA: time.Now()},
			Access:   []wire.ModelAccess{{Model: "llama"}}}}}
	if err := g.SetNetMap(nm); err != nil {
		b.Fatal(err)
	}
	return "http://" + serveLoopback(b, g), up.srv.URL
}

// perOp runs n POSTs of body to url and returns the mean time of one.
func perOp(b *testing.B, c *http.Client, url, body string, n int) time.Duration {
	start := time.Now()
	for range n {
		resp, err := c.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	return time.Since(start) / time.Duration(n)
}

func benchCompare(b *testing.B, body string, chunks int) {
	guardURL, directURL := benchGuard(b)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	perOp(b, c, directURL, body, 50) // warm both paths up
	perOp(b, c, guardURL, body, 50)
	b.ResetTimer()
	direct := perOp(b, c, directURL, body, b.N)
	guard := perOp(b, c, guardURL, body, b.N)
	b.StopTimer()
	b.ReportMetric(float64(direct.Nanoseconds()), "direct-ns/op")
	b.ReportMetric(float64(guard.Nanoseconds()), "guard-ns/op")
	b.ReportMetric(float64((guard - direct).Nanoseconds()), "added-ns/op")
	if chunks > 0 {
		b.ReportMetric(float64((guard-direct).Nanoseconds())/float64(chunks), "added-ns/chunk")
	}
}

// BenchmarkAddedLatency: one non-streamed chat completion.
func BenchmarkAddedLatency(b *testing.B) {
	benchCompare(b, `{"model":"llama","max_tokens":5,"messages":[{"role":"user","content":"hello there"}]}`, 0)
}

// BenchmarkStreamChunk: a streamed answer of 200 chunks; added-ns/chunk
// is the guard's cost per event (read, count, write, flush).
func BenchmarkStreamChunk(b *testing.B) {
	benchCompare(b, `{"model":"llama","stream":true,"max_tokens":200,"messages":[{"role":"user","content":"hello there"}]}`, 200)
}

// memUpstream answers every request in memory with a canned answer: the
// guard's own work, without sockets or the other processes' noise.
type memUpstream struct{ whole, stream string }

func (m memUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	h, body := http.Header{"Content-Type": {"application/json"}}, m.whole
	if strings.Contains(string(b), `"stream":true`) {
		h, body = http.Header{"Content-Type": {"text/event-stream"}}, m.stream
	}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: -1, Request: r}, nil
}

// handlerGuard is a guard with guardbench's policy (limits, a max_tokens
// cap, prompt hashes; screening for secrets, personal data and injection
// when screened) answered by memUpstream.
func handlerGuard(b testing.TB, screened bool) *Guard { return limitedGuard(b, screened, benchLimits) }

// benchLimits are guardbench's limits: every one on, none biting.
var benchLimits = wire.Limits{RPM: 1 << 30, TPM: 1 << 40, Concurrency: 1024, TokensPerDay: 1 << 60, MaxTokens: 4096}

// limitedGuard is handlerGuard with the grant's limits lim; tweak may
// change its configuration.
func limitedGuard(b testing.TB, screened bool, lim wire.Limits, tweak ...func(*Config)) *Guard {
	spool, err := audit.Open(b.TempDir(), audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Models: map[string]Upstream{"llama": {URL: "http://127.0.0.1:1", Kind: KindOpenAI}}, NodeName: "bench", Audit: spool, AuditKey: []byte("k")}
	for _, f := range tweak {
		f(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { g.Close(); spool.Close() })
	chunk := "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"llama\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"word \"}}]}\n\n"
	g.upstream = memUpstream{
		whole:  `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"llama","choices":[{"index":0,"message":{"role":"assistant","content":"The capital of France is Paris. It lies on the Seine."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":14,"total_tokens":26}}`,
		stream: strings.Repeat(chunk, 50) + "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":20,\"total_tokens\":32}}\n\ndata: [DONE]\n\n",
	}
	if err := g.SetNetMap(benchNetMap(lim, screened)); err != nil {
		b.Fatal(err)
	}
	return g
}

// benchNetMap grants alice llama under one grant with limits lim.
func benchNetMap(lim wire.Limits, screened bool) *wire.NetMap {
	priv, _ := key.NewPrivate()
	gr := wire.GrantRule{ID: "grants[0]", MFA: wire.Duration(12 * time.Hour), Audit: wire.AuditRules{Prompts: "hash"}, Limits: lim}
	if screened {
		gr.Guard = wire.GuardRules{Injection: "flag", Redact: []string{"secrets", "pii"}}
	}
	return &wire.NetMap{Seq: 1, Rules: &wire.NodeRules{Grants: []wire.GrantRule{gr}},
		Peers: []wire.Peer{{Key: priv.Public(), Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
			Identity: wire.Identity{UserID: "u1", Login: "alice@example.com", DeviceID: "d1", LastMFA: time.Now(), Expiry: time.Now().Add(24 * time.Hour)},
			Access:   []wire.ModelAccess{{Model: "llama"}}}}}
}

// benchPrompt is guardbench's chat request.
const benchPrompt = `{"model":"llama","max_tokens":256,"messages":[{"role":"system","content":"You are a helpful assistant for the finance team. Answer briefly and cite the policy section when you can."},{"role":"user","content":"Our travel policy says economy class for flights under six hours. I have a 7 hour flight to Singapore next month for the quarterly review; which class may I book, and who needs to approve it? Please also list what receipts I must keep."}]}`

// BenchmarkHandler is the guard's own CPU and allocations per request:
// ServeHTTP on a recorder, the upstream in memory.
func BenchmarkHandler(b *testing.B) {
	for _, c := range []struct {
		name     string
		screened bool
		body     string
	}{
		{"whole", false, benchPrompt},
		{"whole-screened", true, benchPrompt},
		{"stream50", false, strings.Replace(benchPrompt, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)},
		{"stream50-screened", true, strings.Replace(benchPrompt, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)},
	} {
		b.Run(c.name, func(b *testing.B) {
			g := handlerGuard(b, c.screened)
			b.ReportAllocs()
			for b.Loop() {
				r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(c.body))
				r.RemoteAddr = "127.0.0.1:40000"
				w := httptest.NewRecorder()
				g.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkAdmission is what the limits cost a request. "request": the
// guard's own time per request (ServeHTTP, the upstream in memory) with
// every limit of the grant on (each request holds a slot, reserves its
// worst case and settles) and with none, served in turn so that both see
// the same machine; on/off is their ratio. "limiter": the admission
// steps alone (hold, reserve, settle) with every limit on. "leases":
// the same as "request" with rpm, tpm and tokensPerDay spent from leases
// (on) against counted on the node (off); a lease is a tenth of the
// limit, so it is asked for once here: this is the per-request
// accounting. "leased-rates": rpm and tpm leased besides tokensPerDay
// (on) against tokensPerDay leased alone, rpm and tpm off: what counting
// rpm and tpm for the organisation costs. "budgets": a token and a money
// budget leased besides the grant's limits (on) against the limits
// alone (off): two more accounts and the price.
func BenchmarkAdmission(b *testing.B) {
	b.Run("request", func(b *testing.B) {
		compareGuards(b, limitedGuard(b, false, benchLimits), limitedGuard(b, false, wire.Limits{}))
	})
	b.Run("leases", func(b *testing.B) {
		src := benchLeases()
		leased := limitedGuard(b, false, benchLimits, func(c *Config) { c.Leases = src })
		compareGuards(b, leased, limitedGuard(b, false, benchLimits))
		checkAsks(b, src, 3)
	})
	b.Run("leased-rates", func(b *testing.B) {
		dayOnly := benchLimits
		dayOnly.RPM, dayOnly.TPM = 0, 0
		src := benchLeases()
		on := limitedGuard(b, false, benchLimits, func(c *Config) { c.Leases = src })
		compareGuards(b, on, limitedGuard(b, false, dayOnly, func(c *Config) { c.Leases = benchLeases() }))
		checkAsks(b, src, 3)
	})
	b.Run("budgets", func(b *testing.B) {
		src := benchLeases()
		budgeted := limitedGuard(b, false, benchLimits, func(c *Config) { c.Leases = src })
		withBudgets(b, budgeted)
		compareGuards(b, budgeted, limitedGuard(b, false, benchLimits, func(c *Config) { c.Leases = benchLeases() }))
		checkAsks(b, src, 5)
	})
	for _, units := range [][]string{nil, {wire.LeaseTokens, wire.LeaseMoney}} {
		b.Run(fmt.Sprintf("lease-limiter/budgets=%d", len(units)), func(b *testing.B) {
			l := newLeaseLimiter(benchLeases(), time.Second, slog.New(slog.DiscardHandler))
			g := &policy.GrantRule{ID: "grants[0]", Limits: policy.Limits(benchLimits), Budgets: units}
			price := policy.Price{Input: 600_000, Output: 1_800_000}
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				t, r := l.reserve("user:u1", g, 4200, price, now, false)
				if r != nil {
					b.Fatal(r.reason)
				}
				t.settle(300, 100)
			}
		})
	}
	b.Run("limiter", func(b *testing.B) {
		l := newLocalLimiter()
		g := &policy.GrantRule{ID: "grants[0]", Limits: policy.Limits(benchLimits)}
		grants := []*policy.GrantRule{g}
		now := time.Now()
		b.ReportAllocs()
		for b.Loop() {
			if r := l.hold("user:u1", grants, now); r != nil {
				b.Fatal(r.reason)
			}
			t, r := l.reserve("user:u1", g, 4200, policy.Price{}, now, true)
			if r != nil {
				b.Fatal(r.reason)
			}
			t.settle(300, 0)
		}
	})
}

// benchLeases is a lease source with benchLimits' limits.
func benchLeases() *storeLeases {
	src := newStoreLeases(benchLimits.TokensPerDay)
	src.limits[wire.LeaseRPM], src.limits[wire.LeaseTPM] = int64(benchLimits.RPM), int64(benchLimits.TPM)
	return src
}

// checkAsks fails b unless src was asked for leases at most max times
// (about once per account: a benchmark that asks per request measures
// the lease source, not the guard), allowing for minutes that turned.
func checkAsks(b *testing.B, src *storeLeases, max int) {
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.asks > 3*max {
		b.Fatalf("%d lease requests, want about %d", src.asks, max)
	}
}

// compareGuards serves benchPrompt with on and off in turn and reports
// their time per request and the ratio.
func compareGuards(b *testing.B, on, off *Guard) {
	var tOn, tOff time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 { // each goes first half the time
			tOn += timeServe(b, on)
			tOff += timeServe(b, off)
		} else {
			tOff += timeServe(b, off)
			tOn += timeServe(b, on)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(tOn.Nanoseconds())/n, "on-ns/req")
	b.ReportMetric(float64(tOff.Nanoseconds())/n, "off-ns/req")
	b.ReportMetric(float64(tOn)/float64(tOff), "on/off")
}

// timeServe serves benchPrompt with g and returns how long it took.
func timeServe(b *testing.B, g *Guard) time.Duration {
	r := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(benchPrompt))
	r.RemoteAddr = "127.0.0.1:40000"
	w := httptest.NewRecorder()
	start := time.Now()
	g.ServeHTTP(w, r)
	took := time.Since(start)
	if w.Code != 200 {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	return took
}

// withBudgets makes g's grant meter token and money budgets, with llama
// priced.
func withBudgets(b *testing.B, g *Guard) {
	nm := benchNetMap(benchLimits, false)
	nm.Seq = 2
	nm.Rules.Grants[0].Budgets = []string{wire.LeaseTokens, wire.LeaseMoney}
	nm.Rules.Models = []wire.ModelRule{{Model: "llama", InputPrice: 600_000, OutputPrice: 1_800_000}}
	if err := g.SetNetMap(nm); err != nil {
		b.Fatal(err)
	}
}
