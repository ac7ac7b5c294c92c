package mcpguard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/mcpguard"
	"github.com/moatmesh/moat/node/mcpguard/mcptest"
)

// BenchmarkToolsCall measures a tools/call made with the official Go SDK
// client straight to the server and through the MCP guard (over loopback
// TCP, no WireGuard: the guard's own cost, with screening on), at
// concurrency 1 and 32. It reports the median and 99th percentile
// latency and calls a second; the guard's added latency is the
// difference of the medians.
func BenchmarkToolsCall(b *testing.B) {
	server := mcptest.Jira(b)
	guarded := guardFor(b, server)
	for _, path := range []struct{ name, url string }{{"direct", server}, {"guard", guarded}} {
		cs := mcptest.Connect(b, path.url, &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}})
		for _, conc := range []int{1, 32} {
			b.Run(path.name+"/c"+strconv.Itoa(conc), func(b *testing.B) { measure(b, cs, conc) })
		}
	}
}

// guardFor serves server through an MCP guard that knows 127.0.0.1 as a
// caller granted every tool under screening settings.
func guardFor(b *testing.B, server string) string {
	g, err := mcpguard.New(mcpguard.Config{Servers: map[string]string{"jira": server}})
	if err != nil {
		b.Fatal(err)
	}
	priv, _ := key.NewPrivate()
	nm := &wire.NetMap{Seq: 1,
		Rules: &wire.NodeRules{MCPGrants: []wire.GrantRule{{ID: "grants[0]", Guard: wire.GuardRules{Injection: "block", Redact: []string{"secrets", "pii"}}}}},
		Peers: []wire.Peer{{Key: priv.Public(), Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
			Identity: wire.Identity{Login: "bench@example.com"}, MCPAccess: []wire.MCPAccess{{Server: "jira", Tools: []string{"*"}}}}}}
	if err := g.SetNetMap(nm); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(g)
	b.Cleanup(srv.Close)
	return srv.URL + "/mcp/jira"
}

func measure(b *testing.B, cs *mcp.ClientSession, conc int) {
	lat := make([]time.Duration, b.N)
	var next sync.Mutex
	i := 0
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				next.Lock()
				n := i
				i++
				next.Unlock()
				if n >= b.N {
					return
				}
				t0 := time.Now()
				_, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_issue", Arguments: map[string]any{"id": "OPS-1"}})
				lat[n] = time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}
