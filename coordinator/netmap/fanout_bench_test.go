package netmap

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// The fan-out benchmark: 10,000 devices (100 people × 99 devices, plus
// 100 GPU nodes) hold netmap streams in this process, over a real SQLite
// store. Streams are served by Fanout.Serve in-process (10,000 loopback
// TCP pairs would exceed the file limit of a test machine); what is
// measured is the fan-out's own work: read, recompute, encode, deliver.

const (
	benchPeople  = 100
	benchPerUser = 99
	benchNodes   = 100
)

func benchPolicy(models string) string {
	return `{
  "groups": { "group:all": ["autogroup:member"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] }, "qwen": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:all"], "models": [` + models + `] } ],
}`
}

// streamRecorder is one device's stream: it notes when each netmap line
// arrives.
type streamRecorder struct {
	h       http.Header
	arrived chan time.Time
}

func (r *streamRecorder) Header() http.Header { return r.h }
func (r *streamRecorder) WriteHeader(int)     {}
func (r *streamRecorder) Flush()              {}
func (r *streamRecorder) Write(b []byte) (int, error) {
	if len(b) > 1 {
		select {
		case r.arrived <- time.Now():
		default:
		}
	}
	return len(b), nil
}

// benchPolicies is the policy in force, swapped by the benchmark.
type benchPolicies struct{ p atomic.Pointer[policy.Policy] }

func (b *benchPolicies) PolicyInForce(context.Context) *policy.Policy { return b.p.Load() }

func (b *benchPolicies) set(tb testing.TB, text string) {
	p, err := policy.Parse("bench.hujson", []byte(text))
	if err != nil {
		tb.Fatal(err)
	}
	b.p.Store(p)
}

func BenchmarkNetmapFanout10k(b *testing.B) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "moat.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ids := seedMesh(b, st)
	pols := &benchPolicies{}
	pols.set(b, benchPolicy(`"llama"`))
	f, err := New(ctx, Config{Store: st, Policies: pols})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()

	recs := make([]*streamRecorder, len(ids))
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	valid := func(context.Context) bool { return true }
	for i, id := range ids {
		recs[i] = &streamRecorder{h: http.Header{}, arrived: make(chan time.Time, 4)}
		req := httptest.NewRequest("GET", "/api/v1/netmap", nil).WithContext(sctx)
		wg.Add(1)
		go func() { defer wg.Done(); f.Serve(recs[i], req, id, 0, valid) }()
	}
	waitAll(b, recs, time.Minute) // the first netmaps
	b.ResetTimer()
	models := []string{`"llama","qwen"`, `"llama"`}
	var all []time.Duration
	var peak uint64
	for i := 0; i < b.N; i++ {
		settle(recs)
		stop := sampleHeap(&peak)
		start := time.Now()
		pols.set(b, benchPolicy(models[i%2]))
		f.Changed()
		all = append(all, since(start, waitAll(b, recs, time.Minute))...)
		stop()
	}
	b.StopTimer()
	report(b, "save", all)
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")

	// A revocation reaches the revoked device's peers (the 100 nodes).
	victim, err := st.Device(ctx, ids[0])
	if err != nil {
		b.Fatal(err)
	}
	nodeRecs := recs[len(recs)-benchNodes:]
	settle(recs)
	start := time.Now()
	victim.Revoked = true
	if err := st.UpdateDevice(ctx, victim); err != nil {
		b.Fatal(err)
	}
	f.Drop(victim.ID)
	f.Changed()
	report(b, "revoke", since(start, waitAll(b, nodeRecs, time.Minute)))
	cancel()
	wg.Wait()
}

// seedMesh creates the people, devices and nodes in the store and
// returns their IDs, nodes last.
func seedMesh(b *testing.B, st *store.DB) []string {
	ctx := context.Background()
	var ids []string
	now := time.Now()
	add := func(d *store.Device) {
		priv, _ := key.NewPrivate()
		d.PublicKey, d.Created = priv.Public().String(), now
		if err := st.CreateDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	for u := range benchPeople {
		user, err := st.UpsertUserByOIDC(ctx, &store.User{Issuer: "bench", Subject: fmt.Sprint(u), Email: fmt.Sprintf("u%d@example.com", u), Role: "member"})
		if err != nil {
			b.Fatal(err)
		}
		for range benchPerUser {
			add(&store.Device{ID: store.NewID("d_"), Kind: store.KindUser, UserID: user.ID, Hostname: "h", Expiry: now.Add(12 * time.Hour), LastMFA: now})
		}
	}
	for range benchNodes {
		add(&store.Device{ID: store.NewID("n_"), Kind: store.KindNode, Hostname: "gpu", Tags: []string{"tag:gpu"},
			Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641")},
			Models:    []wire.ModelAd{{Name: "llama"}, {Name: "qwen"}}})
	}
	return ids
}

// settle drains arrivals until none came for half a second, so that a
// measured round sees only its own netmaps.
func settle(recs []*streamRecorder) {
	for {
		got := false
		deadline := time.Now().Add(500 * time.Millisecond)
		for time.Now().Before(deadline) {
			for _, r := range recs {
				select {
				case <-r.arrived:
					got = true
				default:
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !got {
			return
		}
	}
}

// waitAll waits until every recorder got a netmap and returns the times.
func waitAll(b *testing.B, recs []*streamRecorder, limit time.Duration) []time.Time {
	out := make([]time.Time, len(recs))
	deadline := time.After(limit)
	for i, r := range recs {
		select {
		case out[i] = <-r.arrived:
		case <-deadline:
			b.Fatalf("only %d of %d streams got a netmap within %v", i, len(recs), limit)
		}
	}
	return out
}

func since(start time.Time, ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(start)
	}
	return out
}

func report(b *testing.B, name string, ds []time.Duration) {
	slices.Sort(ds)
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), name+"-p50-ms")
	b.ReportMetric(q(0.99), name+"-p99-ms")
	b.Logf("%s: %d deliveries, p50 %.1f ms, p99 %.1f ms, max %.1f ms", strings.ToUpper(name), len(ds), q(0.5), q(0.99), q(1))
}

// sampleHeap records the peak heap in use until stop is called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
