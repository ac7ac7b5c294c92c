package coordinator

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// The fan-out benchmark: 10,000 devices (100 people × 99 devices, plus
// 100 GPU nodes) hold netmap streams in this process. Streams are served
// by the coordinator's real handler, in-process (10,000 loopback TCP
// pairs would exceed the file limit of a test machine); what is measured
// is the coordinator's own work: recompute, encode, deliver.

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

func BenchmarkNetmapFanout10k(b *testing.B) {
	ctx := context.Background()
	clk := newClock()
	tc := startCoord(&testing.T{}, b.TempDir(), clk)
	defer tc.stop()
	tok := tc.adminToken(&testing.T{})
	creds := seedMesh(b, tc)
	tc.savePolicyB(b, tok, benchPolicy(`"llama"`))

	recs := make([]*streamRecorder, len(creds))
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, cred := range creds {
		recs[i] = &streamRecorder{h: http.Header{}, arrived: make(chan time.Time, 4)}
		req := httptest.NewRequest("GET", "/api/v1/netmap", nil).WithContext(sctx)
		req.Header.Set("Authorization", "Bearer "+cred)
		wg.Add(1)
		go func() { defer wg.Done(); tc.ServeHTTP(recs[i], req) }()
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
		tc.savePolicyB(b, tok, benchPolicy(models[i%2]))
		all = append(all, since(start, waitAll(b, recs, time.Minute))...)
		stop()
	}
	b.StopTimer()
	report(b, "save", all)
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")

	// A revocation reaches the revoked device's peers (the 100 nodes).
	ds, _ := tc.store.Devices(ctx)
	var victim *store.Device
	for _, d := range ds {
		if d.Kind == store.KindUser {
			victim = d
			break
		}
	}
	nodeRecs := recs[len(recs)-benchNodes:]
	settle(recs)
	start := time.Now()
	if status, body := tc.admin(&testing.T{}, tok, "POST", "/devices/"+victim.ID+"/revoke", ""); status != http.StatusNoContent {
		b.Fatal(status, body)
	}
	report(b, "revoke", since(start, waitAll(b, nodeRecs, time.Minute)))
	cancel()
	wg.Wait()
}

func (tc *testCoord) savePolicyB(b *testing.B, tok, text string) {
	if status, body := tc.admin(&testing.T{}, tok, "PUT", "/policy", jsonBody(policyBody{Text: text})); status != http.StatusOK {
		b.Fatalf("save policy: %d %s", status, body)
	}
}

// seedMesh creates the people, devices and nodes straight in the store
// and returns their credentials, nodes last.
func seedMesh(b *testing.B, tc *testCoord) []string {
	ctx := context.Background()
	var creds []string
	now := tc.clock.Now()
	add := func(d *store.Device) {
		cred, hash := newSecret(prefixDeviceCred)
		priv, _ := key.NewPrivate()
		d.PublicKey, d.CredHash, d.Created = priv.Public().String(), hash, now
		if err := tc.store.CreateDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
		creds = append(creds, cred)
	}
	for u := range benchPeople {
		user, err := tc.store.UpsertUserByOIDC(ctx, &store.User{Issuer: "bench", Subject: fmt.Sprint(u), Email: fmt.Sprintf("u%d@example.com", u), Role: "member"})
		if err != nil {
			b.Fatal(err)
		}
		for range benchPerUser {
			add(&store.Device{ID: newID("d_"), Kind: store.KindUser, UserID: user.ID, Hostname: "h", Expiry: now.Add(12 * time.Hour), LastMFA: now})
		}
	}
	for range benchNodes {
		add(&store.Device{ID: newID("n_"), Kind: store.KindNode, Hostname: "gpu", Tags: []string{"tag:gpu"},
			Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641")},
			Models:    []wire.ModelAd{{Name: "llama"}, {Name: "qwen"}}})
	}
	return creds
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
