package meshbench

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestTsnetThroughputSmoke(t *testing.T) {
	if os.Getenv("MOAT_BENCH_TSNET") != "1" {
		t.Skip("set MOAT_BENCH_TSNET=1 to run: brings up tailscale's test control, DERP/STUN and two tsnet nodes, too heavy for the regular suite")
	}
	goroutinesBefore := runtime.NumGoroutine()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	r, err := tsnetThroughput(ctx, time.Second)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("tsnetThroughput: %v", err)
	}
	t.Logf("tsnet→tsnet over direct UDP %s: %.3f Gbit/s (%d bytes in %v; whole run %v)",
		r.path, r.bitsPerSec/1e9, r.bytes, r.elapsed.Round(time.Millisecond), took.Round(time.Millisecond))
	if !(r.bitsPerSec > 0) {
		t.Fatalf("throughput %v bit/s, want > 0", r.bitsPerSec)
	}
	if r.path == "" {
		t.Errorf("no direct path recorded")
	}

	// Everything started must be gone. Allow tailscale's goroutines a
	// moment to notice their contexts and exit.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutinesBefore && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > goroutinesBefore {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines before, %d after TsnetThroughput returned:\n%s", goroutinesBefore, n, buf)
	}
}

func TestTsnetThroughputRejectsBadDuration(t *testing.T) {
	if _, err := TsnetThroughput(context.Background(), 0); err == nil {
		t.Fatal("TsnetThroughput(0) succeeded, want an error")
	}
}
