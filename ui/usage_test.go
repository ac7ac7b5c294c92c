package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

var usageResets = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

func (f *fake) Usage(_ context.Context, days int) (*Usage, error) {
	u := &Usage{Currency: "EUR",
		People: []UsageTotal{{Name: "alice@example.com", Requests: 3, Tokens: 3000, Cost: 4_500_000}, {Name: "<b>bob</b>", Requests: 1, Tokens: 10}},
		Groups: []UsageTotal{{Name: "group:ml", Requests: 3, Tokens: 3000, Cost: 4_500_000}},
		Models: []UsageTotal{{Name: "llama", Requests: 4, Tokens: 3010, Cost: 4_500_000}},
		Nodes:  []UsageTotal{{Name: "gpu-1", Requests: 4, Tokens: 3010, Cost: 4_500_000}},
		Budgets: []wire.BudgetState{{Name: "group:ml's budget of 5.00 EUR a month", Unit: "money", Currency: "EUR",
			Used: 4_500_000, Warn: 4_000_000, Limit: 5_000_000, Resets: usageResets}},
	}
	for i := range days {
		u.Days = append(u.Days, UsageDay{Day: usageResets.AddDate(0, 0, i-days), Tokens: int64(i * 100), Cost: int64(i * 150_000)})
	}
	return u, nil
}

func (f *fake) MyUsage(context.Context, string) (*wire.Usage, error) {
	return &wire.Usage{
		Grants: []wire.GrantUsage{{Grant: "grants[0]", Models: []string{"llama"}, Limits: wire.Limits{TokensPerDay: 1000}, UsedToday: 250, Resets: usageResets}},
		Budgets: []wire.BudgetState{{Name: "each person's under grants[0] budget of 100 tokens a day", Unit: "tokens",
			Used: 120, Limit: 100, Resets: usageResets}},
	}, nil
}

func TestUsagePage(t *testing.T) {
	f := &fake{viewer: &Viewer{ID: "u1", Email: "root@example.com", Role: RoleAuditor}}
	w := serve(New(f), "GET", "/ui/usage", nil)
	body := w.Body.String()
	for _, want := range []string{"Tokens per day", "Spend per day (EUR)", "Top spenders", "alice@example.com", "4.50 EUR",
		"&lt;b&gt;bob&lt;/b&gt;", "group:ml&#39;s budget of 5.00 EUR a month", "past its warning at 4.00 EUR", "0.50 EUR",
		`<title>2026-12-31: 2900 tokens in 0 requests</title>`, `aria-current="page">Usage`} {
		if !strings.Contains(body, want) {
			t.Errorf("usage page lacks %q", want)
		}
	}
	if c := strings.Count(body, `<rect class="ok"`); c != 2*(usageDays-1) {
		t.Errorf("%d bars drawn, want %d (two charts of %d days, the first empty)", c, 2*(usageDays-1), usageDays)
	}
	f.viewer.Role = RoleMember
	if w := serve(New(f), "GET", "/ui/usage", nil); w.Code != 403 {
		t.Errorf("a member sees the organisation's use: %d", w.Code)
	}
}

func TestMinePageShowsOwnUse(t *testing.T) {
	f := &fake{viewer: &Viewer{ID: "u1", Email: "alice@example.com", Role: RoleMember}}
	body := serve(New(f), "GET", "/ui/my", nil).Body.String()
	for _, want := range []string{"My use", "250 of 1000", "750 (resets", "each person&#39;s under grants[0] budget of 100 tokens a day", "used up", "0 tokens"} {
		if !strings.Contains(body, want) {
			t.Errorf("my access page lacks %q", want)
		}
	}
}
