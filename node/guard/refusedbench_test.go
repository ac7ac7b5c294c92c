//go:build unix

package guard

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
			lg := newLoopGuard(b, wire.Limits{RPM: 1, Concurrency: 1}, nil)
			c := lg.clientFrom(lg.alice)
			c.Transport.(*http.Transport).DisableKeepAlives = true
			return "http://" + lg.addr, c
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

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
