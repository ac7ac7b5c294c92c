package guard

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/testclock"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// rateNodes starts n guards with limits lim leasing from src on one
// test clock, set to a minute's start; src's limits are lim's.
func rateNodes(t *testing.T, n int, lim policy.Limits) ([]*mesh, *storeLeases, *testclock.Clock) {
	clk := testclock.New()
	clk.Advance(time.Duration(60-clk.Now().Unix()%60) * time.Second)
	src := newStoreLeases(lim.TokensPerDay)
	src.clock = clk.Now
	src.limits[wire.LeaseRPM], src.limits[wire.LeaseTPM] = int64(lim.RPM), int64(lim.TPM)
	var nodes []*mesh
	for range n {
		nodes = append(nodes, newMesh(t, lim, func(c *Config) { c.Leases, c.Now = src, clk.Now }))
	}
	return nodes, src, clk
}

// rateBurst sends alice's requests spread over nodes, a few at once,
// and returns how many were answered; every other answer must be a 429
// for reason, naming what, with a Retry-After of at most a minute.
func rateBurst(t *testing.T, nodes []*mesh, requests int, body, reason, what string) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	answered := 0
	gate := make(chan struct{}, 6)
	for i := range requests {
		m := nodes[i%len(nodes)]
		wg.Go(func() {
			gate <- struct{}{}
			defer func() { <-gate }()
			resp := m.post(m.alice, "/v1/chat/completions", body)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			retry, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case resp.StatusCode == 200:
				answered++
			case resp.StatusCode != 429 || !strings.Contains(string(b), reason) || !strings.Contains(string(b), what) ||
				!strings.Contains(string(b), "resets at") || retry < 1 || retry > 61:
				t.Errorf("request %d: %d Retry-After %q: %s", i, resp.StatusCode, resp.Header.Get("Retry-After"), b)
			}
		})
	}
	wg.Wait()
	return answered
}

// usedBy sums the tokens the nodes' audit records hold once they hold n
// records together.
func usedBy(t *testing.T, nodes []*mesh, n int) int64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		var total int64
		got := 0
		for _, m := range nodes {
			total += m.used()
			got += len(m.records())
		}
		if got >= n {
			return total
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d audit records, want %d", got, n)
		}
		<-tick()
	}
}

// TestRPMAcrossThreeNodes: a burst of one person's requests spread over
// three guards answers at most rpm in the coordinator's minute (the
// bound for rpm is the limit itself: a request is one request), refuses
// the rest naming the limit and when it resets, and a new minute admits
// again.
func TestRPMAcrossThreeNodes(t *testing.T) {
	const rpm = 12
	nodes, _, clk := rateNodes(t, 3, policy.Limits{RPM: rpm})
	const body = `{"model":"llama","max_tokens":5}`
	if n := rateBurst(t, nodes, 36, body, reasonRPM, "12 requests a minute"); n != rpm {
		t.Fatalf("%d of 36 answered in one minute with rpm %d", n, rpm)
	}
	clk.Advance(time.Minute)
	if n := rateBurst(t, nodes, 15, body, reasonRPM, "12 requests a minute"); n != rpm {
		t.Fatalf("%d of 15 answered in the next minute with rpm %d", n, rpm)
	}
}

// TestTPMAcrossThreeNodes: the tokens of a burst over three guards stay
// within tpm plus one lease (a tenth) per node, as docs/policy.md
// states, and the rest is refused naming the limit.
func TestTPMAcrossThreeNodes(t *testing.T) {
	const tpm, size = 300, 30
	nodes, _, _ := rateNodes(t, 3, policy.Limits{TPM: tpm})
	const body = `{"model":"llama","max_tokens":5}` // reserves 8+5, uses 10+5
	n := rateBurst(t, nodes, 45, body, reasonTPM, "300 tokens a minute")
	used := usedBy(t, nodes, 45)
	t.Logf("%d of 45 answered, %d tokens used of a tpm of %d", n, used, tpm)
	if used > tpm+3*size {
		t.Fatalf("used %d tokens in a minute, more than tpm %d plus one lease of %d per node", used, tpm, size)
	}
	if n == 45 || used < tpm-3*size {
		t.Fatalf("used %d of %d with %d of 45 answered: tpm is not what bites", used, tpm, n)
	}
}

// TestRPMWhileCoordinatorDown: a node keeps admitting on its last rpm
// lease, then on one lease size of its own per minute, saying so in the
// audit, and refuses beyond that naming rpm and the outage; when the
// coordinator answers again it is told what the node admitted on its
// own in that minute, and the node admits on leases again.
func TestRPMWhileCoordinatorDown(t *testing.T) {
	const rpm, size = 20, 2
	nodes, src, clk := rateNodes(t, 1, policy.Limits{RPM: rpm})
	m := nodes[0]
	const body = `{"model":"llama","max_tokens":5}`
	call := func() (int, string) { return m.call(m.alice, "/v1/chat/completions", body) }
	if code, out := call(); code != 200 {
		t.Fatalf("first request: %d %s", code, out)
	}
	src.down.Store(true)
	admitted := func() int {
		for n := 0; ; n++ {
			code, out := call()
			if code == 429 {
				if !strings.Contains(out, reasonLeaseDown) || !strings.Contains(out, "20 requests a minute, counted by the coordinator, which this node cannot reach") {
					t.Fatalf("refusal while down: %s", out)
				}
				return n
			}
			if code != 200 || n > rpm {
				t.Fatalf("request while down: %d %s", code, out)
			}
		}
	}
	if n := admitted(); n != size-1+size {
		t.Fatalf("%d admitted while down: want the last lease's %d and an allowance of %d", n, size-1, size)
	}
	clk.Advance(time.Minute)
	if n := admitted(); n != size {
		t.Fatalf("%d admitted in the next minute while down: want an allowance of %d", n, size)
	}
	// The last lease was valid: the node did not need the coordinator
	// for the first request after it went down.
	online, offline, down := quotaRecords(m.waitRecords(1 + 3*size - 1 + 2))
	if online != size || offline != 2*size || down != 2 {
		t.Fatalf("audit: %d admitted online, %d offline, %d refused as unreachable", online, offline, down)
	}
	src.down.Store(false)
	if code, out := call(); code != 200 {
		t.Fatalf("after the coordinator came back: %d %s", code, out)
	}
	if src.mu.Lock(); src.extra != size {
		t.Errorf("the coordinator was told of %d requests admitted on the node's own in its minute, want %d", src.extra, size)
	}
	src.mu.Unlock()
}

// TestQuotaChangeEndsLeases: a netmap that lowers a limit ends the
// node's leases of it at once: the node returns what it holds and
// leases under the new limit, so a lowered rpm holds within the minute
// rather than after the node's lease of the old one ends.
func TestQuotaChangeEndsLeases(t *testing.T) {
	nodes, src, _ := rateNodes(t, 1, policy.Limits{RPM: 100})
	m := nodes[0]
	const body = `{"model":"llama","max_tokens":5}`
	if code, out := m.call(m.alice, "/v1/chat/completions", body); code != 200 {
		t.Fatalf("first request: %d %s", code, out)
	}
	src.mu.Lock()
	src.limits[wire.LeaseRPM] = 5 // the policy saved at the coordinator...
	src.mu.Unlock()
	m.rules.Grants[0].Limits.RPM = 5 // ...and pushed to the node
	m.apply(2)
	n := 1
	for ; n < 20; n++ {
		if code, out := m.call(m.alice, "/v1/chat/completions", body); code != 200 {
			if code != 429 || !strings.Contains(out, "5 requests a minute") {
				t.Fatalf("refusal: %d %s", code, out)
			}
			break
		}
	}
	if n != 5 {
		t.Fatalf("%d requests answered in the minute the limit went from 100 to 5", n)
	}
}

// TestLeaseLimitDisagreement: while the coordinator's policy and the
// node's netmap disagree on a limit (one of them is about to change),
// the coordinator's holds and the node asks again at the next request,
// so the change holds as soon as the coordinator has it, not a lease
// lifetime later.
func TestLeaseLimitDisagreement(t *testing.T) {
	nodes, src, _ := rateNodes(t, 1, policy.Limits{RPM: 100})
	m := nodes[0]
	src.mu.Lock()
	src.limits[wire.LeaseRPM] = 3 // the coordinator's policy: the netmap is behind
	src.mu.Unlock()
	const body = `{"model":"llama","max_tokens":5}`
	for i := range 4 {
		code, out := m.call(m.alice, "/v1/chat/completions", body)
		if want := map[bool]int{true: 200, false: 429}[i < 3]; code != want {
			t.Fatalf("request %d under the coordinator's rpm 3: %d %s", i+1, code, out)
		}
	}
	src.mu.Lock()
	src.limits[wire.LeaseRPM] = 100 // the coordinator catches up with the netmap
	src.mu.Unlock()
	if code, out := m.call(m.alice, "/v1/chat/completions", body); code != 200 {
		t.Fatalf("once the coordinator agrees: %d %s", code, out)
	}
}
