package guard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/policy"
)

// storeLeases is the coordinator's lease endpoint in process: one
// counter per (who, grant, day, kind), or for rpm and tpm per minute of
// clock, against the limit of its kind (limits, else limit), as
// coordinator/store.Lease keeps it (tested there against both
// databases). down makes it unreachable.
type storeLeases struct {
	limit  int64
	limits map[string]int64 // by kind
	clock  func() time.Time
	down   atomic.Bool
	ttl    time.Duration
	mu     sync.Mutex
	used   map[string]int64
	extra  int64 // reported by nodes
	asks   int
}

func newStoreLeases(limit int64) *storeLeases {
	return &storeLeases{limit: limit, limits: map[string]int64{}, clock: time.Now, ttl: time.Minute, used: make(map[string]int64)}
}

func (s *storeLeases) Lease(ctx context.Context, req wire.LeaseRequest) (wire.LeaseResponse, error) {
	if s.down.Load() {
		return wire.LeaseResponse{}, errors.New("coordinator unreachable")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asks++
	now := s.clock()
	res := wire.LeaseResponse{Limit: s.limit, Expires: now.Add(s.ttl), Now: now}
	if l, ok := s.limits[req.Kind]; ok {
		res.Limit = l
	}
	k := fmt.Sprint(req.Who, req.Grant, req.Day, req.Kind)
	if perMinute(req.Kind) {
		res.Window = now.Unix() / 60
		res.Expires = time.Unix((res.Window+1)*60, 0)
		k = fmt.Sprint(req.Who, req.Grant, res.Window, req.Kind)
		if req.Window != res.Window {
			req.Return, req.Extra = 0, 0
		}
	}
	if res.Limit == 0 {
		return res, nil
	}
	u := max(s.used[k]-req.Return, 0) + req.Extra
	res.Granted = max(min(req.Want, res.Limit-u), 0)
	res.Used = u + res.Granted
	s.used[k] = res.Used
	s.extra += req.Extra
	return res, nil
}

// quotaRecords counts the records admitted with the coordinator's
// leases, admitted while it was unreachable, and refused for that.
func quotaRecords(recs []audit.Record) (online, offline, down int) {
	for _, r := range recs {
		switch {
		case r.Reason == reasonLeaseDown:
			down++
		case r.Reason == "" && r.Quota == "offline":
			offline++
		case r.Reason == "":
			online++
		}
	}
	return online, offline, down
}

// used sums the tokens of a mesh's audit records.
func (m *mesh) used() (n int64) {
	for _, r := range m.records() {
		n += r.TokensIn + r.TokensOut
	}
	return n
}

// TestLeasesHoldAcrossThreeNodes: a burst of one person's requests
// spread over three guards leasing from one counter uses at most the
// daily quota plus one lease size per node (docs/policy.md), and most of
// the quota is usable.
func TestLeasesHoldAcrossThreeNodes(t *testing.T) {
	const quota, size = 300, 30 // leaseSize: a tenth
	src := newStoreLeases(quota)
	var nodes []*mesh
	for range 3 {
		nodes = append(nodes, newMesh(t, policy.Limits{TokensPerDay: quota}, func(c *Config) { c.Leases = src }))
	}
	const body = `{"model":"llama","max_tokens":5}` // reserves 8+5, uses 10+5
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	gate := make(chan struct{}, 12) // at once: more only tests the netstack's backlog
	for i := range 45 {
		m := nodes[i%3]
		wg.Go(func() {
			gate <- struct{}{}
			defer func() { <-gate }()
			code, out := m.call(m.alice, "/v1/chat/completions", body)
			switch {
			case code == 200:
				ok.Add(1)
			case code == 429 && strings.Contains(out, reasonDay):
				refused.Add(1)
			default:
				t.Errorf("%d %s", code, out)
			}
		})
	}
	wg.Wait()
	var total int64
	for _, m := range nodes {
		m.waitRecords(int(ok.Load()+refused.Load()) / 3)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		total = 0
		n := 0
		for _, m := range nodes {
			total += m.used()
			n += len(m.records())
		}
		if n == 45 || time.Now().After(deadline) {
			break
		}
		<-tick()
	}
	t.Logf("%d answered, %d refused, %d tokens used of a quota of %d", ok.Load(), refused.Load(), total, quota)
	if total > quota+3*size {
		t.Fatalf("used %d tokens, more than the quota %d plus one lease of %d per node", total, quota, size)
	}
	if refused.Load() == 0 || total < quota-3*size {
		t.Fatalf("used %d of %d with %d refused: the quota is not what bites", total, quota, refused.Load())
	}
}

// TestLeasesWhileCoordinatorDown: a node keeps admitting on its last
// lease and then one more lease size of its own, saying so in the audit,
// then refuses naming the outage; the coordinator is told what the node
// admitted on its own once it answers again.
func TestLeasesWhileCoordinatorDown(t *testing.T) {
	const quota, size = 1000, 100
	src := newStoreLeases(quota)
	src.ttl = time.Millisecond // every request asks again
	m := newMesh(t, policy.Limits{TokensPerDay: quota}, func(c *Config) { c.Leases = src })
	const body = `{"model":"llama","max_tokens":5}`
	if code, out := m.call(m.alice, "/v1/chat/completions", body); code != 200 {
		t.Fatalf("first request: %d %s", code, out)
	}
	src.down.Store(true)
	n := 1
	for ; ; n++ {
		code, out := m.call(m.alice, "/v1/chat/completions", body)
		if code == 429 {
			if !strings.Contains(out, reasonLeaseDown) || !strings.Contains(out, "cannot reach") {
				t.Fatalf("refusal while down: %s", out)
			}
			break
		}
		if code != 200 || n > 100 {
			t.Fatalf("request %d while down: %d %s", n+1, code, out)
		}
	}
	online, offline, down := quotaRecords(m.waitRecords(n + 1))
	if online != 1 || offline != n-1 || down != 1 {
		t.Fatalf("audit: %d admitted online, %d offline, %d refused as unreachable; want 1, %d, 1", online, offline, down, n-1)
	}
	if used := m.used(); used > size+size+size {
		t.Fatalf("used %d while down: more than the last lease, the allowance and one lease of exposure", used)
	}
	if n < 2*size/15-1 {
		t.Fatalf("only %d requests before the refusal: the allowance was not used", n)
	}
	src.down.Store(false)
	if code, out := m.call(m.alice, "/v1/chat/completions", body); code != 200 {
		t.Fatalf("after the coordinator came back: %d %s", code, out)
	}
	src.mu.Lock()
	defer src.mu.Unlock()
	if src.extra != size {
		t.Fatalf("the coordinator was told of %d tokens admitted on the node's own, want %d", src.extra, size)
	}
}
