package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// ratePolicy gives alice llama on tag:gpu nodes with the limits in %s.
const ratePolicy = `{
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:ml"], "models": ["llama"], "mfa": "12h", "limits": { LIMITS } } ],
}`

func rateLimits(limits string) string { return strings.Replace(ratePolicy, "LIMITS", limits, 1) }

// reachAll waits until alice's device reaches the guard of every node
// (GET /v1/models, which no limit counts), then moves the coordinator's
// clock to the start of a minute, so that a burst after it counts in one
// minute.
func (tr *trio) reachAll(t testing.TB) {
	for _, a := range tr.addrs {
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := tr.hc.Get("http://" + a.String() + "/v1/models")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s unreachable: %v", a, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	clk := tr.sys.Coord.Clock
	clk.Advance(time.Duration(60-clk.Now().Unix()%60) * time.Second)
}

// TestRPMAcrossThreeNodes: rpm counts for the organisation: a burst of
// alice's requests spread over three real nodes answers at most rpm in
// the coordinator's minute (rpm's bound is the limit itself, as
// docs/policy.md states) and refuses the rest naming the limit, with
// Retry-After.
func TestRPMAcrossThreeNodes(t *testing.T) {
	const rpm = 12
	tr := threeNodes(t, rateLimits(`"rpm": 12`))
	tr.reachAll(t)
	answered, refused := burst(t, tr.addrs, tr.chat, 36, "may use 12 requests a minute under grants[0]")
	t.Logf("%d answered, %d refused with rpm %d over three nodes", answered, refused, rpm)
	if answered > rpm || refused != 36-answered {
		t.Fatalf("%d of 36 answered in one minute with rpm %d", answered, rpm)
	}
	if answered < rpm {
		t.Fatalf("only %d of rpm %d answered: leases were lost", answered, rpm)
	}
}

// TestTPMAcrossThreeNodes: tpm counts for the organisation: the tokens
// of a burst over three real nodes stay within tpm plus one lease (a
// tenth of it) per node, and the rest is refused naming the limit.
func TestTPMAcrossThreeNodes(t *testing.T) {
	const tpm, lease = 600, 60
	tr := threeNodes(t, rateLimits(`"tpm": 600`))
	tr.reachAll(t)
	answered, refused := burst(t, tr.addrs, tr.chat, 36, "may use 600 tokens a minute under grants[0]")
	used := auditedTokens(t, tr.sys, answered+refused)
	t.Logf("%d answered, %d refused, %d tokens used of a tpm of %d", answered, refused, used, tpm)
	if used > tpm+3*lease {
		t.Fatalf("used %d tokens in a minute: more than tpm %d plus one lease of %d per node", used, tpm, lease)
	}
	if refused == 0 {
		t.Fatalf("nothing refused after %d tokens of a tpm of %d", used, tpm)
	}
}

// TestQuotaChangeReachesNodes: a policy save that lowers rpm holds on
// every node as soon as its netmap arrives, not when the node's lease of
// the old limit would have ended (the rest of the minute, 60 s here):
// the netmap ends the lease. A lease is a tenth of the limit, 6,000
// requests here, more than the polling can use up in the minute. The
// time is the closing note's propagation number (BenchmarkQuotaChange
// measures it repeatedly).
func TestQuotaChangeReachesNodes(t *testing.T) {
	tr := threeNodes(t, rateLimits(`"rpm": 60000`))
	tr.reachAll(t)
	tr.untilAll(t, 200, time.Now()) // every node holds a lease
	took := tr.change(t, `"rpm": 3`, 429)
	t.Logf("rpm 60000 → 3 held on all three nodes %s after the save", took)
	if took > 20*time.Second {
		t.Fatalf("a lowered rpm took %s to hold on every node", took)
	}
}

// BenchmarkQuotaChange is the time from a policy save changing rpm
// (60000 → 3, and back) to every one of three nodes enforcing the new
// limit: ms/change, the slowest node's.
func BenchmarkQuotaChange(b *testing.B) {
	tr := threeNodes(b, rateLimits(`"rpm": 60000`))
	tr.reachAll(b)
	tr.untilAll(b, 200, time.Now())
	var total time.Duration
	n := 0
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			total += tr.change(b, `"rpm": 3`, 429)
		} else {
			// A new minute: the coordinator's clock stands still
			// here, and the nodes' leases end a minute after they
			// were taken on theirs.
			tr.sys.Coord.Clock.Advance(time.Minute)
			total += tr.change(b, `"rpm": 60000`, 200)
		}
		n++
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(n), "ms/change")
}

// change saves the policy with limits and returns how long until every
// node answers want (200, or 429 for rpm).
func (tr *trio) change(tb testing.TB, limits string, want int) time.Duration {
	start := time.Now()
	tr.sys.Coord.SavePolicy(tb, rateLimits(limits))
	return tr.untilAll(tb, want, start)
}

// untilAll sends alice's requests to every node, each node's one after
// another, until each answers want (200, or 429 for rpm) and returns
// how long after since the slowest did.
func (tr *trio) untilAll(tb testing.TB, want int, since time.Time) time.Duration {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var slowest time.Duration
	for _, a := range tr.addrs {
		wg.Go(func() {
			for {
				code, out, err := tr.chat(a)
				if err == nil && code == want && (want == 200 || strings.Contains(out, "rpm_exceeded")) {
					mu.Lock()
					slowest = max(slowest, time.Since(since))
					mu.Unlock()
					return
				}
				if err != nil || code != 200 && code != 429 || time.Since(since) > time.Minute {
					tb.Errorf("node %s after %s: %d %s %v", a, time.Since(since), code, out, err)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return slowest
}
