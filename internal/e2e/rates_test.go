package e2e

import (
	"strings"
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
func (tr *trio) reachAll(t *testing.T) {
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
