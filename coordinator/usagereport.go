package coordinator

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
	"github.com/moatmesh/moat/ui"
)

// The usage report sums the answered requests of the audit records per
// UTC day, person, group, model and node, priced at the policy in force.
// It reads the audit store, so it reaches back as far as audit retention
// keeps records; budgets are counted apart (budgets.go) and never from it.

// Bounds of the usage report.
const (
	maxUsageDays   = 92 // the most days one report covers
	topSpenders    = 20 // people listed
	tagged         = "(tagged devices)"
	unknownGroupOf = "(in no group)"
)

// usageReport sums the last days UTC days, today included.
func (s *Server) usageReport(ctx context.Context, days int) (*ui.Usage, error) {
	p := s.PolicyInForce(ctx)
	if p == nil {
		p = &policy.Policy{}
	}
	names, groups, err := s.usageNames(ctx, p)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	u := &ui.Usage{Currency: p.Budgets.Currency}
	sums := map[string]map[string]*ui.UsageTotal{"people": {}, "groups": {}, "models": {}, "nodes": {}}
	for i := range days {
		from := today.AddDate(0, 0, i-days+1)
		rows, err := s.store.Usage(ctx, from, from.AddDate(0, 0, 1))
		if err != nil {
			return nil, err
		}
		day := ui.UsageDay{Day: from}
		for _, r := range rows {
			cost := p.Budgets.Prices[r.Model].Cost(r.TokensIn, r.TokensOut)
			add := func(kind, name string) {
				t := sums[kind][name]
				if t == nil {
					t = &ui.UsageTotal{Name: name}
					sums[kind][name] = t
				}
				t.Requests, t.Tokens, t.Cost = t.Requests+r.Requests, t.Tokens+r.TokensIn+r.TokensOut, t.Cost+cost
			}
			day.Requests, day.Tokens, day.Cost = day.Requests+r.Requests, day.Tokens+r.TokensIn+r.TokensOut, day.Cost+cost
			person := cmp.Or(r.Login, tagged)
			add("people", person)
			gs := groups[r.UserID]
			if len(gs) == 0 {
				gs = []string{unknownGroupOf}
			}
			for _, g := range gs {
				add("groups", g)
			}
			add("models", r.Model)
			add("nodes", cmp.Or(names[r.NodeID], r.NodeID))
		}
		u.Days = append(u.Days, day)
	}
	u.People, u.Groups, u.Models, u.Nodes = ranked(sums["people"], topSpenders), ranked(sums["groups"], 0), ranked(sums["models"], 0), ranked(sums["nodes"], 0)
	u.Budgets, err = s.orgBudgets(ctx, p, now)
	return u, err
}

// usageNames returns the names of nodes by ID and the policy groups of
// people by user ID.
func (s *Server) usageNames(ctx context.Context, p *policy.Policy) (map[string]string, map[string][]string, error) {
	ds, err := s.store.Devices(ctx)
	if err != nil {
		return nil, nil, err
	}
	names := map[string]string{}
	for _, d := range ds {
		if d.Kind == store.KindNode {
			names[d.ID] = d.Hostname
		}
	}
	us, err := s.store.Users(ctx)
	if err != nil {
		return nil, nil, err
	}
	groups := map[string][]string{}
	for _, u := range us {
		groups[u.ID] = p.GroupsOf(&policy.Identity{Login: u.Email, Groups: u.Groups, Admin: u.Admin})
	}
	return names, groups, nil
}

// ranked returns the totals, the most spend first, then the most tokens;
// at most n of them (0: all).
func ranked(m map[string]*ui.UsageTotal, n int) []ui.UsageTotal {
	out := make([]ui.UsageTotal, 0, len(m))
	for _, t := range m {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b ui.UsageTotal) int {
		return cmp.Or(cmp.Compare(b.Cost, a.Cost), cmp.Compare(b.Tokens, a.Tokens), cmp.Compare(a.Name, b.Name))
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

// orgBudgets returns every budget of p with its period's count; a budget
// of each person is summed over them and shown without thresholds, which
// hold per person.
func (s *Server) orgBudgets(ctx context.Context, p *policy.Policy, now time.Time) ([]wire.BudgetState, error) {
	var out []wire.BudgetState
	for i := range p.Budgets.Limits {
		b := &p.Budgets.Limits[i]
		st := budgetState(p, b, now)
		var err error
		if st.Used, err = s.budgetUsed(ctx, b, now); err != nil {
			return nil, err
		}
		if b.Each {
			st.Name += " (everyone's together)"
			st.Warn, st.Limit = 0, 0
		}
		out = append(out, st)
	}
	return out, nil
}

// adminUsage serves the usage report: GET /api/v1/admin/usage?days=N
// (1 to 92, default 30).
func (s *Server) adminUsage(c *gin.Context) {
	days := 30
	if v := c.Query("days"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxUsageDays {
			apiError(c, http.StatusBadRequest, "bad_request", fmt.Sprintf("days: want a whole number from 1 to %d", maxUsageDays))
			return
		}
		days = n
	}
	u, err := s.usageReport(c.Request.Context(), days)
	if err != nil {
		s.internal(c, "usage report", err)
		return
	}
	c.JSON(http.StatusOK, u)
}

// Usage implements ui.UsageBackend.
func (b uiBackend) Usage(ctx context.Context, days int) (*ui.Usage, error) {
	u, err := b.s.usageReport(ctx, min(days, maxUsageDays))
	if err != nil {
		return nil, b.fail("usage report", err)
	}
	return u, nil
}

// MyUsage implements ui.UsageBackend.
func (b uiBackend) MyUsage(ctx context.Context, userID string) (*wire.Usage, error) {
	u, err := b.s.store.User(ctx, userID)
	if err != nil {
		return nil, b.fail("read user", err)
	}
	use, err := b.s.ownUsage(ctx, u, b.s.cfg.Now())
	if err != nil {
		return nil, b.fail("read usage", err)
	}
	return use, nil
}
