package guard

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// BenchmarkRefusedBodies is the review's case: 12 parallel 7 MB bodies
// from one caller under rpm 1 and concurrency 1, over loopback TCP and
// over the mesh (userspace WireGuard at both ends, in this process). At
// most one is served; cpu-ms/op is the process's CPU time (the guard's
// and the callers') for the twelve.
func BenchmarkRefusedBodies(b *testing.B) {
	b.Run("loopback", func(b *testing.B) {
		benchRefused(b, func() (string, *http.Client) {
			return refusingGuard(b), &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		})
	})
	b.Run("mesh", func(b *testing.B) {
		benchRefused(b, func() (string, *http.Client) {
			m := newMesh(b, policy.Limits{RPM: 1, Concurrency: 1}, nil)
			return m.url, &http.Client{Transport: &http.Transport{DialContext: m.alice.Eng.Dial, DisableKeepAlives: true}}
		})
	})
}

func benchRefused(b *testing.B, setup func() (string, *http.Client)) {
	body := chatOfSize(7_000_000)
	var cpu time.Duration
	for b.Loop() {
		url, c := setup()
		start := cpuTime()
		var wg sync.WaitGroup
		for range 12 {
			wg.Go(func() {
				resp, err := c.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		cpu += cpuTime() - start
	}
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
}

// refusingGuard is a guard on 127.0.0.1 whose one caller (127.0.0.1) has
// rpm 1 and concurrency 1.
func refusingGuard(b *testing.B) string {
	up := newStub(b)
	up.quiet = true
	g, err := New(Config{Models: map[string]Upstream{"llama": {URL: up.srv.URL, Kind: KindOpenAI}}})
	if err != nil {
		b.Fatal(err)
	}
	priv, _ := key.NewPrivate()
	nm := &wire.NetMap{Seq: 1, Rules: &wire.NodeRules{Grants: []wire.GrantRule{{ID: "grants[0]", Limits: wire.Limits{RPM: 1, Concurrency: 1}}}},
		Peers: []wire.Peer{{Key: priv.Public(), Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
			Identity: wire.Identity{UserID: "u1", DeviceID: "d1", Expiry: time.Now().Add(time.Hour)},
			Access:   []wire.ModelAccess{{Model: "llama"}}}}}
	if err := g.SetNetMap(nm); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go g.Serve(ln)
	b.Cleanup(func() { g.Close() })
	return "http://" + ln.Addr().String()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
