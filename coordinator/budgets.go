package coordinator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// Budgets are counted like tokensPerDay (lease.go), in the same usage_day
// table: one counter per budget scope ("group:ml", or "grants[1]|user:ID"
// for a budget of each person), named "budget:UNIT:PER", on the first
// UTC day of its period. A budget lease charges every counter of the
// unit that counts the caller under the grant and grants what the
// tightest leaves, giving the rest back, so no counter is ever leased
// beyond its limit; each step is one statement, as for tokensPerDay.

// softOnly is the limit a counter of a budget without a hard threshold
// is charged against: it counts, and never refuses.
const softOnly = math.MaxInt64 / 4

// leaseBudgets answers a budget lease (req.Kind wire.LeaseTokens or
// wire.LeaseMoney) for the policy in force.
func (s *Server) leaseBudgets(c *gin.Context, req wire.LeaseRequest, now time.Time) {
	ctx := c.Request.Context()
	p := s.PolicyInForce(ctx)
	bs, err := s.budgetsOf(ctx, p, req.Who, req.Grant, req.Kind)
	if err != nil {
		s.internal(c, "find budgets", err)
		return
	}
	res := wire.LeaseResponse{Expires: now.Add(leaseTTL), Now: now}
	if len(bs) == 0 {
		c.JSON(http.StatusOK, res) // Limit 0: no budget counts
		return
	}
	at := time.Unix(req.Day*86400, 0)
	granted := req.Want
	got := make([]int64, len(bs))
	res.Budgets = make([]wire.BudgetState, len(bs))
	for i, b := range bs {
		st := budgetState(p, b, at)
		scope, name := b.Counter(req.Who)
		got[i], st.Used, err = s.store.Lease(ctx, scope, name, periodDay(b, at), counterLimit(b), req.Want, req.Return, req.Extra)
		if err != nil {
			s.internal(c, "lease budget", err)
			return
		}
		granted = min(granted, got[i])
		res.Budgets[i] = st
	}
	for i, b := range bs { // give back what a tighter budget did not grant
		if back := got[i] - granted; back > 0 {
			scope, name := b.Counter(req.Who)
			if _, res.Budgets[i].Used, err = s.store.Lease(ctx, scope, name, periodDay(b, at), counterLimit(b), 0, back, 0); err != nil {
				s.internal(c, "lease budget", err)
				return
			}
		}
	}
	res.Granted, res.Limit = granted, smallestThreshold(bs)
	c.JSON(http.StatusOK, res)
}

// budgetsOf returns the budgets of unit ("" for every unit) in p that
// count the caller with limit key who under grant ("" for every grant's
// budgets that count who as a person or a member).
func (s *Server) budgetsOf(ctx context.Context, p *policy.Policy, who, grant, unit string) ([]*policy.Budget, error) {
	if p == nil || len(p.Budgets.Limits) == 0 {
		return nil, nil
	}
	id, err := s.identityOf(ctx, who)
	if err != nil {
		return nil, err
	}
	var out []*policy.Budget
	for _, b := range p.BudgetsFor(&id, grant) {
		if unit == "" || b.Unit == unit {
			out = append(out, b)
		}
	}
	return out, nil
}

// identityOf is the policy identity behind a guard's limit key:
// "user:ID" a person, "device:ID" a tagged device. One the store no
// longer knows has no identity: only its grant's budgets count it.
func (s *Server) identityOf(ctx context.Context, who string) (policy.Identity, error) {
	kind, id, _ := strings.Cut(who, ":")
	switch kind {
	case "user":
		u, err := s.store.User(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return policy.Identity{}, nil
		}
		if err != nil {
			return policy.Identity{}, err
		}
		return policy.Identity{Login: u.Email, Groups: u.Groups, Admin: u.Admin}, nil
	case "device":
		d, err := s.store.Device(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return policy.Identity{}, nil
		}
		if err != nil {
			return policy.Identity{}, err
		}
		return policy.Identity{Tags: d.Tags}, nil
	}
	return policy.Identity{}, nil
}

// budgetState is b's state for a request at, without its count.
func budgetState(p *policy.Policy, b *policy.Budget, at time.Time) wire.BudgetState {
	_, end := b.Period(at)
	st := wire.BudgetState{ID: b.ID(), Name: p.Budgets.Describe(b), Unit: b.Unit, Warn: b.Warn, Limit: b.Limit, Resets: end}
	if b.Unit == policy.UnitMoney {
		st.Currency = p.Budgets.Currency
	}
	return st
}

// budgetStates returns the budgets that count who under any grant, with
// their counts at now: what the person may see of their own.
func (s *Server) budgetStates(ctx context.Context, p *policy.Policy, who string, now time.Time) ([]wire.BudgetState, error) {
	var out []wire.BudgetState
	if p == nil {
		return nil, nil
	}
	id, err := s.identityOf(ctx, who)
	if err != nil {
		return nil, err
	}
	for i := range p.Budgets.Limits {
		b := &p.Budgets.Limits[i]
		if !budgetCounts(p, &id, b) {
			continue
		}
		st := budgetState(p, b, now)
		scope, name := b.Counter(who)
		if st.Used, err = s.store.DayUsage(ctx, scope, name, periodDay(b, now)); err != nil {
			return nil, fmt.Errorf("budget usage: %w", err)
		}
		out = append(out, st)
	}
	return out, nil
}

// budgetCounts reports whether b may count a request of id: it names id
// (or a group of id's), or a grant id may use.
func budgetCounts(p *policy.Policy, id *policy.Identity, b *policy.Budget) bool {
	if strings.HasPrefix(b.For, "grants[") {
		return grantCovers(p, id, b.For)
	}
	return slices.Contains(p.BudgetsFor(id, ""), b)
}

// grantCovers reports whether id may use a model under the grant named
// grant.
func grantCovers(p *policy.Policy, id *policy.Identity, grant string) bool {
	for _, m := range p.Models {
		e, err := p.Explain(*id, "model:"+m.Name)
		if err != nil {
			continue
		}
		for _, g := range e.Chain {
			if g.ID() == grant {
				return true
			}
		}
	}
	return false
}

// periodDay is the UTC day number the counter of b's period holding at
// is kept under: the period's first day.
func periodDay(b *policy.Budget, at time.Time) int64 {
	start, _ := b.Period(at)
	return start.Unix() / 86400
}

// counterLimit is the limit b's counter is leased against.
func counterLimit(b *policy.Budget) int64 {
	if b.Limit > 0 {
		return b.Limit
	}
	return softOnly
}

// smallestThreshold sizes the node's leases: a tenth of the tightest
// threshold of the budgets counting it.
func smallestThreshold(bs []*policy.Budget) int64 {
	var out int64
	for _, b := range bs {
		if t := b.Threshold(); out == 0 || t < out {
			out = t
		}
	}
	return out
}
