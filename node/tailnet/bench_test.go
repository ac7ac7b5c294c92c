package tailnet

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"tailscale.com/ipn/store/mem"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"

	"github.com/moatmesh/moat/internal/guardbench"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/guard"
	"github.com/moatmesh/moat/node/tailnet/tailnettest"
	"github.com/moatmesh/moat/policy"
)

// benchPolicy is guardbench's grant (limits that do not bite, a
// max_tokens cap, prompt hashes, screening on) without MFA, which a
// tailnet cannot prove.
const benchPolicy = `{
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [{ "src": ["autogroup:member"], "models": ["llama"],
    "limits": { "concurrency": 1024, "maxTokens": 4096 },
    "audit": { "prompts": "hash" }, "guard": { "injection": "flag", "redact": ["secrets", "pii"] } }],
}`

// BenchmarkGuardTailnetVsMesh measures the guard reached over a tailnet
// (two tsnet nodes in this process, direct UDP on loopback) beside the
// guard reached over moat's netstack mesh (guardbench's "guard" path),
// against the same stand-in upstream, in one run: p50 of sequential
// requests and req/s with 64 callers. It runs once whatever b.N is.
func BenchmarkGuardTailnetVsMesh(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	up, err := guardbench.StartUpstream("127.0.0.1:0", time.Now(), 50, 2*time.Millisecond)
	if err != nil {
		b.Fatal(err)
	}
	defer up.Close()
	mesh, err := guardbench.StartMesh(up.URL, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer mesh.Close()
	tn := startTailnetGuard(b, ctx, up.URL)
	var res [2]benchResult
	for i, t := range []guardbench.Target{{Name: "mesh", URL: mesh.URL, Client: mesh.Client}, tn} {
		if res[i], err = measureGuard(t); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("guard over %-7s latency p50 %7.1fµs | c=64 %7.0f req/s, cpu %5.1fµs/req\n", t.Name, us(res[i].p50), res[i].rps, us(res[i].cpu))
	}
	mp50, tp50 := res[0].p50, res[1].p50
	fmt.Printf("ratio tailnet_vs_mesh_rps %.2f   (tailnet %.0f req/s, mesh %.0f req/s at c=64)\n", res[1].rps/res[0].rps, res[1].rps, res[0].rps)
	fmt.Printf("tailnet adds p50 %+.1fµs over the mesh (%.1fµs vs %.1fµs)\n", us(tp50-mp50), us(tp50), us(mp50))
	b.ReportMetric(res[1].rps, "tailnet-req/s")
	b.ReportMetric(res[0].rps, "mesh-req/s")
	b.ReportMetric(us(tp50-mp50), "tailnet-added-p50-µs")
	for range b.N {
	}
}

type benchResult struct {
	p50, cpu time.Duration
	rps      float64
}

func measureGuard(t guardbench.Target) (benchResult, error) {
	var r benchResult
	if _, err := guardbench.Latency(t, 200); err != nil { // warm up
		return r, fmt.Errorf("%s: %w", t.Name, err)
	}
	lat, err := guardbench.Latency(t, 2000)
	if err != nil {
		return r, err
	}
	l, err := guardbench.Throughput(t, 64, 3*time.Second)
	r.p50, r.rps, r.cpu = guardbench.Pct(lat, 50), l.RPS, l.CPUPerReq
	return r, err
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// startTailnetGuard runs a tailnet node serving llama from upstream and
// returns the target a tailnet caller reaches it through, once the
// caller has a direct path to it.
func startTailnetGuard(b *testing.B, ctx context.Context, upstream string) guardbench.Target {
	tn := tailnettest.Start(b)
	pol, err := policy.Parse("bench.hujson", []byte(benchPolicy))
	if err != nil {
		b.Fatal(err)
	}
	n, err := Start(ctx, Config{ControlURL: tn.URL, Hostname: "gpu-1", AdvertiseTags: []string{"tag:gpu"}, StateDir: b.TempDir(),
		Models: []node.Model{{Name: "llama", Upstream: guard.Upstream{URL: upstream, Kind: guard.KindOpenAI}}},
		Policy: pol, Store: new(mem.Store), Ephemeral: true, ShutdownTimeout: -1})
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { n.Run(runCtx); close(done) }()
	b.Cleanup(func() { stop(); <-done; n.Close() })
	if err := tailnettest.WaitForHomeDERP(ctx, n.Tailnet()); err != nil {
		b.Fatal(err)
	}
	caller := tn.Join(b, ctx, "caller")
	ip4, _ := n.Tailnet().TailscaleIPs()
	if err := waitDirect(ctx, caller, ip4.String()); err != nil {
		b.Fatal(err)
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: caller.Dial,
		MaxIdleConns: 256, MaxIdleConnsPerHost: 128, MaxConnsPerHost: 64, DisableCompression: true}}
	return guardbench.Target{Name: "tailnet", URL: "http://" + ip4.String(), Client: c}
}

// waitDirect pings ip from s until s has a direct UDP path to it.
func waitDirect(ctx context.Context, s *tsnet.Server, ip string) error {
	lc, err := s.LocalClient()
	if err != nil {
		return err
	}
	for {
		st, err := lc.Status(ctx)
		if err != nil {
			return err
		}
		for _, p := range st.Peer {
			if len(p.TailscaleIPs) > 0 && p.TailscaleIPs[0].String() == ip && p.CurAddr != "" {
				return nil
			}
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err = lc.Ping(pctx, netip.MustParseAddr(ip), tailcfg.PingDisco)
		cancel()
		if ctx.Err() != nil {
			return fmt.Errorf("no direct path to the tailnet node: %w (last ping: %v)", ctx.Err(), err)
		}
	}
}
