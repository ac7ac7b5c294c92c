package guard

import (
	"io"
	"net"
	"net/http"
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
	up.quiet = true
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
	lim := policy.Limits{RPM: 1 << 30, TPM: 1 << 30, Concurrency: 64, TokensPerDay: 1 << 60, MaxTokens: 4096}
	nm := &wire.NetMap{Seq: 1,
		Rules: &policy.NodeRules{Grants: []policy.GrantRule{{ID: "grants[0]", MFA: policy.Duration(12 * time.Hour), Limits: lim, Audit: policy.Audit{Prompts: "hash"}}}},
		Peers: []wire.Peer{{Key: priv.Public(), Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
			Identity: wire.Identity{UserID: "u1", Login: "alice@example.com", DeviceID: "d1", LastMFA: time.Now()},
			Access:   []policy.ModelAccess{{Model: "llama"}}}}}
	if err := g.SetNetMap(nm); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go g.Serve(ln)
	b.Cleanup(func() { g.Close() })
	return "http://" + ln.Addr().String(), up.srv.URL
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
