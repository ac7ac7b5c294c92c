package netmap

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/pgtest"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// The fan-out benchmarks: 10,000 devices (100 people × 99 devices, plus
// 100 GPU nodes that every device may use) and 50,000 devices (16,500
// people × 3 devices in 10 teams, plus 500 nodes in 10 pools, each team
// granted its pool) hold netmap streams in this process, over a real
// SQLite store, or PostgreSQL served by one or three replicas.
// MOAT_BENCH_PEOPLE scales the 10,000-device mesh down on a busy machine
// (people × 99 devices, plus the nodes); MOAT_BENCH_CPUPROFILE names a
// file for a CPU profile of the saves alone. Streams are served by
// Fanout.Serve in-process, so the benchmarks open no socket per stream
// (10,000 loopback TCP pairs would exceed the file limit of a test
// machine); what is measured is the fan-out's own work: read,
// recompute, encode, deliver.

const (
	benchPerUser = 99
	benchNodes   = 100
)

// benchPeople is 100, or MOAT_BENCH_PEOPLE.
var benchPeople = func() int {
	if n, err := strconv.Atoi(os.Getenv("MOAT_BENCH_PEOPLE")); err == nil && n > 0 {
		return n
	}
	return 100
}()

func benchPolicy(models string) string {
	return `{
  "groups": { "group:all": ["autogroup:member"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] }, "qwen": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:all"], "models": [` + models + `] } ],
}`
}

// benchMesh is the shape of a benchmark's mesh. With teams, person u is
// in team u mod teams (an IdP group) and the nodes are split into as many
// pools, in order: team k may use the models of pool k.
type benchMesh struct {
	people, perUser, nodes, teams int
}

var (
	mesh10k = benchMesh{people: benchPeople, perUser: benchPerUser, nodes: benchNodes}
	mesh50k = benchMesh{people: 16500, perUser: 3, nodes: 500, teams: 10}
)

// policy is the mesh's policy; wide grants one more model than narrow,
// so that saving the other changes every netmap.
func (m benchMesh) policy(wide bool) string {
	if m.teams == 0 {
		if wide {
			return benchPolicy(`"llama","qwen"`)
		}
		return benchPolicy(`"llama"`)
	}
	var tags, models, grants []string
	for k := range m.teams {
		tags = append(tags, fmt.Sprintf(`"tag:pool%d": []`, k))
		models = append(models, fmt.Sprintf(`"llama%d": { "servedBy": ["tag:pool%d"] }, "qwen%d": { "servedBy": ["tag:pool%d"] }`, k, k, k, k))
		granted := fmt.Sprintf(`"llama%d"`, k)
		if wide {
			granted += fmt.Sprintf(`, "qwen%d"`, k)
		}
		grants = append(grants, fmt.Sprintf(`{ "src": ["idp:team%d"], "models": [%s] }`, k, granted))
	}
	return `{ "tagOwners": {` + strings.Join(tags, ",") + `}, "models": {` + strings.Join(models, ",") +
		`}, "grants": [` + strings.Join(grants, ",") + `] }`
}

// pool returns node i's pool (of m.nodes), and its tag and models.
func (m benchMesh) pool(i int) (int, []string, []wire.ModelAd) {
	if m.teams == 0 {
		return 0, []string{"tag:gpu"}, []wire.ModelAd{{Name: "llama"}, {Name: "qwen"}}
	}
	k := i * m.teams / m.nodes
	return k, []string{fmt.Sprint("tag:pool", k)}, []wire.ModelAd{{Name: fmt.Sprint("llama", k)}, {Name: fmt.Sprint("qwen", k)}}
}

// streamRecorder is one device's stream: it notes when each netmap line
// arrives.
type streamRecorder struct {
	h       http.Header
	arrived chan time.Time
}

func (r *streamRecorder) Header() http.Header              { return r.h }
func (r *streamRecorder) WriteHeader(int)                  {}
func (r *streamRecorder) Flush()                           {}
func (r *streamRecorder) SetWriteDeadline(time.Time) error { return nil }

// Write notes the end of a netmap line (not of a heartbeat).
func (r *streamRecorder) Write(b []byte) (int, error) {
	if len(b) > 1 && b[len(b)-1] == '\n' {
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

// BenchmarkNetmapFanout10k is the 10,000-device mesh (see mesh10k).
func BenchmarkNetmapFanout10k(b *testing.B) { benchSQLite(b, mesh10k) }

// BenchmarkNetmapFanout50k is the 50,000-device mesh (see mesh50k).
func BenchmarkNetmapFanout50k(b *testing.B) { benchSQLite(b, mesh50k) }

// benchSQLite runs the fan-out benchmark over SQLite and reports it.
func benchSQLite(b *testing.B, m benchMesh) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "moat.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r := runFanoutBench(b, m, []*store.DB{st}, nil, b.N)
	report(b, "save", r.save)
	report(b, "revoke", r.revoke)
	b.ReportMetric(float64(r.peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(r.saveCPU.Milliseconds())/float64(b.N), "save-cpu-ms")
}

// BenchmarkNetmapFanoutReplicas10k runs the same mesh on PostgreSQL twice
// in one run: served by one replica, then spread over three replicas
// (each its own store connection pool, fan-out and LISTEN connection, all
// in this process and on this machine's cores), and reports the three
// replicas' save and revocation p99 beside the one replica's, and their
// ratio. It skips without a PostgreSQL server (MOAT_TEST_POSTGRES).
func BenchmarkNetmapFanoutReplicas10k(b *testing.B) {
	base := pgtest.URL(b, "the replica fan-out benchmark")
	var one, three benchResult
	for _, n := range []int{1, 3} {
		dsn := pgtest.FreshSchema(b, base)
		var sts []*store.DB
		var buses []Bus
		for range n {
			st, err := store.OpenPostgres(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			bus, err := st.Bus(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			sts, buses = append(sts, st), append(buses, bus)
		}
		r := runFanoutBench(b, mesh10k, sts, buses, max(b.N, 3))
		if n == 1 {
			one = r
		} else {
			three = r
		}
	}
	for _, m := range []struct {
		name       string
		one, three []time.Duration
	}{{"save", one.save, three.save}, {"revoke", one.revoke, three.revoke}} {
		p1, p3 := report(b, m.name+"-1r", m.one), report(b, m.name+"-3r", m.three)
		b.ReportMetric(p3/p1, m.name+"-p99-ratio")
		b.Logf("%s p99: one replica %.1f ms, three replicas %.1f ms (%.2f×)", m.name, p1, p3, p3/p1)
	}
}

// benchResult is what one run of the fan-out benchmark measured.
type benchResult struct {
	save, revoke []time.Duration // from the change to each netmap's arrival
	peak         uint64          // peak heap in use while saving
	saveCPU      time.Duration   // CPU time of the process while saving, all rounds
}

// runFanoutBench seeds the mesh into sts[0], serves its devices' streams
// from one fan-out per store (device i from fan-out i mod len(sts)),
// saves a policy that changes every netmap rounds times (on the first
// replica) and revokes three devices (on the last); buses, when not nil,
// connect the fan-outs.
func runFanoutBench(b *testing.B, m benchMesh, sts []*store.DB, buses []Bus, rounds int) benchResult {
	ctx := context.Background()
	ids := seedMesh(b, m, sts[0])
	pols := &benchPolicies{}
	pols.set(b, m.policy(false))
	fans := make([]*Fanout, len(sts))
	for i, st := range sts {
		cfg := Config{Store: st, Policies: pols}
		if buses != nil {
			cfg.Bus = buses[i]
		}
		f, err := New(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		fans[i] = f
	}

	recs := make([]*streamRecorder, len(ids))
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	valid := func(context.Context) bool { return true }
	for i, id := range ids {
		recs[i] = &streamRecorder{h: http.Header{}, arrived: make(chan time.Time, 4)}
		rctx, rcancel := context.WithCancel(sctx) // each request its own, as net/http gives it
		defer rcancel()
		req := httptest.NewRequest("GET", "/api/v1/netmap", nil).WithContext(rctx)
		wg.Go(func() { fans[i%len(fans)].Serve(recs[i], req, id, 0, valid) })
	}
	waitAll(b, recs, 5*time.Minute) // the first netmaps
	b.ResetTimer()
	var r benchResult
	stopProfile := profileSaves(b)
	for i := range rounds {
		settle(recs)
		stop := sampleHeap(&r.peak)
		cpu := cpuTime()
		start := time.Now()
		pols.set(b, m.policy(i%2 == 0))
		fans[0].Changed()
		r.save = append(r.save, since(start, waitAll(b, recs, 5*time.Minute))...)
		r.saveCPU += cpuTime() - cpu
		stop()
	}
	b.StopTimer()
	stopProfile()

	// A revocation reaches the revoked device's peers (the nodes of the
	// first person's pool, on every replica).
	nodeRecs := recs[len(recs)-m.nodes:]
	if m.teams > 0 {
		nodeRecs = nodeRecs[:m.nodes/m.teams]
	}
	last := fans[len(fans)-1]
	for _, id := range ids[:3] {
		victim, err := sts[0].Device(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		settle(recs)
		start := time.Now()
		victim.Revoked = true
		if err := sts[0].UpdateDevice(ctx, victim); err != nil {
			b.Fatal(err)
		}
		last.Drop(victim.ID)
		last.Changed()
		r.revoke = append(r.revoke, since(start, waitAll(b, nodeRecs, time.Minute))...)
	}
	return r
}

// profileSaves writes a CPU profile of the saves alone (not the seeding
// or the revocations) to MOAT_BENCH_CPUPROFILE, when set, until the
// returned func is called.
func profileSaves(b *testing.B) (stop func()) {
	path := os.Getenv("MOAT_BENCH_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		out.Close()
	}
}

// seedMesh creates the people, devices and nodes in the store and
// returns their IDs, nodes last.
func seedMesh(b *testing.B, m benchMesh, st *store.DB) []string {
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
	for u := range m.people {
		user := &store.User{Issuer: "bench", Subject: fmt.Sprint(u), Email: fmt.Sprintf("u%d@example.com", u), Role: "member"}
		if m.teams > 0 {
			user.Groups = []string{fmt.Sprint("team", u%m.teams)}
		}
		user, err := st.UpsertUserByOIDC(ctx, user)
		if err != nil {
			b.Fatal(err)
		}
		for range m.perUser {
			add(&store.Device{ID: store.NewID("d_"), Kind: store.KindUser, UserID: user.ID, Hostname: "h", Expiry: now.Add(12 * time.Hour), LastMFA: now})
		}
	}
	for i := range m.nodes {
		_, tags, models := m.pool(i)
		add(&store.Device{ID: store.NewID("n_"), Kind: store.KindNode, Hostname: "gpu", Tags: tags,
			Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641")}, Models: models})
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

// report reports the p50 and p99 of ds, and returns the p99 in ms.
func report(b *testing.B, name string, ds []time.Duration) float64 {
	slices.Sort(ds)
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.5), name+"-p50-ms")
	b.ReportMetric(q(0.99), name+"-p99-ms")
	b.Logf("%s: %d deliveries, p50 %.1f ms, p99 %.1f ms, max %.1f ms", strings.ToUpper(name), len(ds), q(0.5), q(0.99), q(1))
	return q(0.99)
}

// cpuTime is the CPU time (user and system) this process used so far:
// unlike latencies, it hardly depends on what else the machine runs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
