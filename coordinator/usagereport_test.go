package coordinator

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/ui"
)

// TestUsageReport: the admin API sums answered requests per day, person,
// group, model and node at the policy's prices, lists the budgets with
// their counts, and /metrics exports spend by model and the budgets.
func TestUsageReport(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, budgetPolicy)
	_, n1 := tc.enrollNode(t, tok, "llama")
	alice := tc.addPerson(t, "alice@example.com", false)
	tc.signIn(t, alice, "laptop")
	users, _ := tc.store.Users(t.Context())
	now := tc.clock.Now().UTC()
	rec := func(id string, at time.Time, decision string, in, out int64) map[string]any {
		return map[string]any{"id": id, "time": at, "userId": users[0].ID, "login": "alice@example.com", "model": "llama",
			"decision": decision, "tokensIn": in, "tokensOut": out, "cost": in*1 + out*2}
	}
	batch, _ := json.Marshal([]map[string]any{
		rec("r1", now, "allow", 1000, 500),                  // 2000 µEUR at 1 and 2 EUR a million
		rec("r2", now.Add(-24*time.Hour), "allow", 3000, 0), // yesterday: 3000 µEUR
		rec("r3", now, "limit", 9999, 0),                    // refused: not use
	})
	if code, out := bearerRequest(t, "POST", tc.URL+"/api/v1/audit", string(n1.Credential), string(batch)); code != 200 {
		t.Fatalf("ship audit: %d %s", code, out)
	}
	code, out := tc.admin(t, tok, "GET", "/usage?days=2", "")
	var u ui.Usage
	if err := json.Unmarshal([]byte(out), &u); code != 200 || err != nil {
		t.Fatalf("usage: %d %s", code, out)
	}
	if len(u.Days) != 2 || u.Days[0].Cost != 3000 || u.Days[1].Tokens != 1500 || u.Days[1].Cost != 2000 || u.Currency != "EUR" {
		t.Errorf("days: %+v", u.Days)
	}
	want := ui.UsageTotal{Requests: 2, Tokens: 4500, Cost: 5000}
	for kind, ts := range map[string][]ui.UsageTotal{"alice@example.com": u.People, "group:ml": u.Groups, "llama": u.Models, "gpu-1": u.Nodes} {
		want.Name = kind
		if len(ts) != 1 || ts[0] != want {
			t.Errorf("%s: %+v, want %+v", kind, ts, want)
		}
	}
	if len(u.Budgets) != 2 || !strings.Contains(u.Budgets[1].Name, "everyone's together") || u.Budgets[1].Limit != 0 {
		t.Errorf("budgets: %+v", u.Budgets)
	}
	if code, _ := tc.admin(t, tok, "GET", "/usage?days=1000", ""); code != 400 {
		t.Errorf("a year and more: %d", code)
	}
	_, metrics := bearerRequest(t, "GET", tc.URL+"/metrics", tok, "")
	for _, want := range []string{`moat_spend_micros_total{currency="EUR",model="llama"} 5000`,
		`moat_budget_used{budget="budgets.limits[0]",for="group:ml",per="month",unit="money"} 0`,
		`moat_budget_threshold{budget="budgets.limits[0]",for="group:ml",kind="limit",per="month",unit="money"} 1000`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
