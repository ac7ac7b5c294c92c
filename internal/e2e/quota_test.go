package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/testlog"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/wire"
)

// quotaPolicy gives alice 600 tokens a day of llama on tag:gpu nodes.
const quotaPolicy = `{
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:ml"], "models": ["llama"], "mfa": "12h", "limits": { "tokensPerDay": 600 } } ],
}`

// TestQuotaAcrossThreeNodes: three real nodes lease alice's daily quota
// from one coordinator; a burst of her requests spread over them uses at
// most the quota plus one lease (a tenth of it) per node, as
// docs/policy.md states, and the rest is refused naming the quota.
func TestQuotaAcrossThreeNodes(t *testing.T) {
	burstAcrossThreeNodes(t, quotaPolicy, "tokens_per_day_exceeded")
}

// budgetPolicy gives group:ml a money budget of 0.0006 EUR a day at
// 1 EUR a million tokens: 600 tokens, as quotaPolicy.
const budgetPolicy = `{
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:ml"], "models": ["llama"], "mfa": "12h" } ],
  "budgets": {
    "currency": "EUR",
    "prices": { "llama": { "input": 1, "output": 1 } },
    "limits": [ { "for": "group:ml", "per": "day", "money": { "limit": 0.0006 } } ],
  },
}`

// TestBudgetAcrossThreeNodes: a group's money budget holds across three
// real nodes within the bound docs/policy.md states (the limit plus one
// lease, a tenth of it, per node) and refuses naming the budget.
func TestBudgetAcrossThreeNodes(t *testing.T) {
	burstAcrossThreeNodes(t, budgetPolicy, "group:ml's budget of 0.0006 EUR a day is used up for alice@example.com")
}

// burstAcrossThreeNodes sends a burst of alice's requests over three
// real nodes under policy, which allows her 600 tokens (or their price)
// a day, and checks that at most 600 plus one lease of 60 per node are
// used and that the rest is refused saying refusal.
func burstAcrossThreeNodes(t *testing.T, policy, refusal string) {
	const quota, lease = 600, 60
	tr := threeNodes(t, policy)
	sys, addrs, chat := tr.sys, tr.addrs, tr.chat
	// The first request per node waits for its path through the mesh.
	for _, a := range addrs {
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, out, err := chat(a)
			if err == nil && code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: %d %s %v", a, code, out, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	answered, refused := burst(t, addrs, chat, 36, refusal)
	answered += 3
	used := auditedTokens(t, sys, answered+refused)
	t.Logf("%d answered, %d refused, %d tokens used of a quota of %d", answered, refused, used, quota)
	if used > quota+3*lease {
		t.Fatalf("used %d tokens: more than the quota %d plus one lease of %d per node", used, quota, lease)
	}
	if refused == 0 {
		t.Fatalf("nothing refused after %d tokens of a quota of %d", used, quota)
	}
}

// chatFunc sends alice's chat request to a node and returns the status
// and the answer.
type chatFunc func(addr netip.Addr) (int, string, error)

// trio is a coordinator with three real nodes serving llama and alice's
// device.
type trio struct {
	sys   *System
	addrs []netip.Addr // the nodes' mesh addresses
	hc    *http.Client // over alice's device
	chat  chatFunc
}

// threeNodes starts a coordinator with policy and three real nodes
// serving llama, signs alice in on a device and returns them once her
// device sees the nodes.
func threeNodes(t testing.TB, policy string) *trio {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sys := Start(t)
	coord := sys.Coord
	coord.SavePolicy(t, policy)
	var ids []string
	for _, name := range []string{"gpu-1", "gpu-2", "gpu-3"} {
		// The nodes' logs, shown when the test fails (a first request
		// that hung once in CI left nothing to read).
		logs := &testlog.Buffer{}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s's log:\n%s", name, logs)
			}
		})
		n := sys.AddNodeWith(t, name, NodeOptions{Logger: slog.New(slog.NewTextHandler(logs, nil))}, "llama")
		ids = append(ids, string(n.Node().DeviceID()))
	}
	dir := SignInDevice(t, ctx, coord, coord.AddPerson(t, "alice@example.com", false), "laptop", coord.URL, "")
	cl := StartClient(t, client.Config{StateDir: string(dir)})
	var addrs []netip.Addr
	if WaitNetMap(cl, 20*time.Second, func(nm *wire.NetMap) bool {
		addrs = addrs[:0]
		for _, p := range nm.Peers {
			for _, id := range ids {
				if string(p.Identity.DeviceID) == id && len(p.Models) == 1 {
					addrs = append(addrs, p.Addresses[0])
				}
			}
		}
		return len(addrs) == 3
	}) == nil {
		t.Fatal("alice's device never saw the three nodes")
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: cl.Dial}, Timeout: 30 * time.Second}
	chat := func(addr netip.Addr) (int, string, error) {
		resp, err := hc.Post("http://"+netip.AddrPortFrom(addr, 80).String()+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"llama","max_tokens":30,"messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 429 && resp.Header.Get("Retry-After") == "" {
			return 0, "", errors.New("429 without Retry-After: " + string(b))
		}
		return resp.StatusCode, string(b), nil
	}
	return &trio{sys: sys, addrs: addrs, hc: hc, chat: chat}
}

// burst sends n of alice's requests spread over addrs, six at once, and
// counts those answered and those refused saying refusal; anything else
// fails the test.
func burst(t testing.TB, addrs []netip.Addr, chat chatFunc, n int, refusal string) (answered, refused int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	gate := make(chan struct{}, 6)
	for i := range n {
		wg.Go(func() {
			gate <- struct{}{}
			defer func() { <-gate }()
			code, out, err := chat(addrs[i%len(addrs)])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && code == 200:
				answered++
			case err == nil && code == 429 && strings.Contains(out, refusal):
				refused++
			default:
				t.Errorf("request %d: %d %s %v", i, code, out, err)
			}
		})
	}
	wg.Wait()
	return answered, refused
}

// auditedTokens waits until the coordinator holds n audit records of
// alice and sums their tokens.
func auditedTokens(t *testing.T, sys *System, n int) int64 {
	deadline := time.Now().Add(30 * time.Second)
	for {
		var out struct {
			Records []struct {
				TokensIn, TokensOut int64
			} `json:"records"`
		}
		json.Unmarshal([]byte(sys.Coord.Admin(t, "GET", "/audit?login=alice@example.com&limit=1000", "")), &out)
		if len(out.Records) >= n {
			var sum int64
			for _, r := range out.Records {
				sum += r.TokensIn + r.TokensOut
			}
			return sum
		}
		if time.Now().After(deadline) {
			t.Fatalf("the coordinator has %d audit records of alice, want %d", len(out.Records), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
