package benchsummary

import (
	"math"
	"math/bits"
	"testing"
	"time"
)

// P99 runs f once per b.Loop iteration and reports per-call latency as
// metrics: the 99th percentile and the median in µs ("p99-µs",
// "p50-µs"), the least one (the cost undisturbed, "min-µs") and
// "p99/p50". Durations go into a histogram allocated before the loop, so
// the benchmark adds no allocation and no garbage of its own to what f
// does (B/op and allocs/op are f's alone, and so are the GC cycles that
// land on f's calls). Benchmarks in several packages use it, so their
// percentiles are taken the same way.
func P99(b *testing.B, f func()) {
	h := NewLatencies()
	for b.Loop() {
		t0 := time.Now()
		f()
		h.Add(time.Since(t0))
	}
	h.Report(b)
}

// Latencies is a histogram of durations with 64 buckets per power of two
// (under 1.6 % apart) from 64 ns up, and one per ns below: a few KiB that
// cover any duration.
type Latencies struct {
	n     []uint32
	total int
	least time.Duration
}

// NewLatencies returns an empty histogram.
func NewLatencies() *Latencies {
	return &Latencies{n: make([]uint32, 64*64), least: time.Duration(math.MaxInt64)}
}

// Add counts one duration.
func (h *Latencies) Add(d time.Duration) {
	ns := uint64(max(d, 0))
	i := int(ns)
	if ns >= 64 {
		e := bits.Len64(ns) - 7 // ns>>e is in [64, 128)
		i = 64*(e+1) + int(ns>>e) - 64
	}
	h.n[min(i, len(h.n)-1)]++
	h.total++
	h.least = min(h.least, d)
}

// Least returns the shortest duration counted.
func (h *Latencies) Least() time.Duration { return h.least }

// At returns the duration below which a share q of the calls ended (the
// upper edge of the bucket holding that call).
func (h *Latencies) At(q float64) time.Duration {
	want, seen := int(q*float64(h.total-1))+1, 0
	for i, k := range h.n {
		if seen += int(k); seen >= want {
			if i < 64 {
				return time.Duration(i + 1)
			}
			e, m := i/64-1, i%64+64
			return time.Duration((m + 1) << e)
		}
	}
	return time.Duration(math.MaxInt64)
}

// Report reports the histogram's metrics (see P99) on b.
func (h *Latencies) Report(b *testing.B) {
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	p50, p99 := h.At(0.50), h.At(0.99)
	b.ReportMetric(us(p99), "p99-µs")
	b.ReportMetric(us(p50), "p50-µs")
	b.ReportMetric(us(h.least), "min-µs")
	b.ReportMetric(float64(p99)/float64(p50), "p99/p50")
}
