package coordinator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// budgetPolicy gives group:ml a money budget shared by its members and
// every person under grants[0] a token budget of their own.
const budgetPolicy = `{
  "groups": { "group:ml": ["alice@example.com", "bob@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:ml"], "models": ["llama"] } ],
  "budgets": {
    "currency": "EUR",
    "prices": { "llama": { "input": 1, "output": 2 } },
    "limits": [
      { "for": "group:ml", "per": "month", "money": { "warn": 0.000500, "limit": 0.001000 } },
      { "for": "grants[0]", "each": true, "per": "day", "tokens": { "limit": 400 } },
    ],
  },
}`

// TestLeaseBudgets: a budget lease charges every budget counting the
// caller and grants what the tightest leaves; a group's budget is
// shared by its members, a budget of each person is not; what a person
// may see of their own says so.
func TestLeaseBudgets(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, budgetPolicy)
	_, n1 := tc.enrollNode(t, tok, "llama")
	ctx := context.Background()
	alice, bob := tc.addPerson(t, "alice@example.com", false), tc.addPerson(t, "bob@example.com", false)
	tc.signIn(t, alice, "laptop")
	tc.signIn(t, bob, "laptop")
	ids := map[string]string{}
	users, _ := tc.store.Users(ctx)
	for _, u := range users {
		ids[u.Email] = "user:" + u.ID
	}
	now := tc.clock.Now()
	day := now.UTC().Unix() / 86400
	lease := func(who, kind string, want, ret int64) wire.LeaseResponse {
		t.Helper()
		code, r := tc.lease(t, n1.Credential, wire.LeaseRequest{Who: who, Grant: "grants[0]", Day: day, Want: want, Return: ret, Kind: kind})
		if code != 200 {
			t.Fatalf("lease %s %s: %d", who, kind, code)
		}
		return r
	}
	// Money: 1000 micro-units for the group, shared.
	if r := lease(ids["alice@example.com"], wire.LeaseMoney, 600, 0); r.Granted != 600 || r.Limit != 1000 || len(r.Budgets) != 1 || r.Budgets[0].Used != 600 || r.Budgets[0].Currency != "EUR" {
		t.Fatalf("alice's money lease: %+v", r)
	}
	_, monthEnd := policy.PeriodOf(policy.PerMonth, now)
	if r := lease(ids["bob@example.com"], wire.LeaseMoney, 600, 0); r.Granted != 400 || r.Budgets[0].Used != 1000 || !r.Budgets[0].Resets.Equal(monthEnd) ||
		r.Budgets[0].Name != "group:ml's budget of 0.001 EUR a month" {
		t.Fatalf("bob's money lease shares the group's budget: %+v", r)
	}
	// Tokens: 400 each.
	if r := lease(ids["alice@example.com"], wire.LeaseTokens, 300, 0); r.Granted != 300 || r.Limit != 400 {
		t.Fatalf("alice's token lease: %+v", r)
	}
	if r := lease(ids["bob@example.com"], wire.LeaseTokens, 300, 0); r.Granted != 300 {
		t.Fatalf("bob's token budget is his own: %+v", r)
	}
	if r := lease(ids["alice@example.com"], wire.LeaseTokens, 300, 100); r.Granted != 200 || r.Budgets[0].Used != 400 {
		t.Fatalf("alice's second token lease, returning 100: %+v", r)
	}
	// A tagged caller: no person, but grants[0] counts it on its own.
	if r := lease("device:n_x", wire.LeaseMoney, 10, 0); r.Limit != 0 || r.Granted != 0 || len(r.Budgets) != 0 {
		t.Fatalf("no money budget counts a tagged device: %+v", r)
	}
	code, _ := tc.lease(t, n1.Credential, wire.LeaseRequest{Who: "user:x", Grant: "grants[0]", Day: day, Want: 1, Kind: "euros"})
	if code != 400 {
		t.Fatalf("unknown kind: %d", code)
	}
	states, err := tc.budgetStates(ctx, tc.PolicyInForce(ctx), ids["alice@example.com"], now.Add(time.Minute))
	if err != nil || len(states) != 2 || states[0].Used != 1000 || states[1].Used != 400 || !strings.Contains(states[1].Name, "each person's") {
		t.Fatalf("alice's own budgets: %+v %v", states, err)
	}
	u, _ := tc.store.User(ctx, strings.TrimPrefix(ids["alice@example.com"], "user:"))
	use, err := tc.ownUsage(ctx, u, now)
	if err != nil || len(use.Grants) != 1 || use.Grants[0].Grant != "grants[0]" || use.Grants[0].Models[0] != "llama" || len(use.Budgets) != 2 {
		t.Fatalf("alice's own usage: %+v %v", use, err)
	}
}
