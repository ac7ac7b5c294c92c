package coordinator

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// myUsage answers a person's device with their own use and what remains
// of their limits and budgets: GET /api/v1/usage.
func (s *Server) myUsage(c *gin.Context) {
	d := device(c)
	if d.Kind == store.KindNode || d.UserID == "" {
		apiError(c, http.StatusForbidden, "not_a_person", "only a person's device has use of its own; nodes lease quota")
		return
	}
	u, err := s.store.User(c.Request.Context(), d.UserID)
	if err != nil {
		s.internal(c, "read user", err)
		return
	}
	use, err := s.ownUsage(c.Request.Context(), u, s.cfg.Now())
	if err != nil {
		s.internal(c, "read usage", err)
		return
	}
	c.JSON(http.StatusOK, use)
}

// ownUsage is u's use at now: the grants u may use models under, with
// tokensPerDay's count, and the budgets counting u.
func (s *Server) ownUsage(ctx context.Context, u *store.User, now time.Time) (*wire.Usage, error) {
	p := s.PolicyInForce(ctx)
	out := &wire.Usage{}
	if p == nil {
		return out, nil
	}
	who := "user:" + u.ID
	today := now.UTC().Unix() / 86400
	id := policy.Identity{Login: u.Email, Groups: u.Groups, Admin: u.Admin}
	for _, m := range p.Models {
		e, err := p.Explain(id, "model:"+m.Name)
		if err != nil || !e.Allowed {
			continue
		}
		for _, g := range e.Chain {
			gu := grantUsage(out, g)
			if !slices.Contains(gu.Models, m.Name) {
				gu.Models = append(gu.Models, m.Name)
			}
			if g.Limits.TokensPerDay > 0 && gu.UsedToday == 0 {
				if gu.UsedToday, err = s.store.DayUsage(ctx, who, g.ID(), today); err != nil {
					return nil, err
				}
			}
			gu.Resets = time.Unix((today+1)*86400, 0).UTC()
		}
	}
	var err error
	out.Budgets, err = s.budgetStates(ctx, p, who, now)
	return out, err
}

// grantUsage returns use's entry for g, adding it when new.
func grantUsage(use *wire.Usage, g *policy.Grant) *wire.GrantUsage {
	for i := range use.Grants {
		if use.Grants[i].Grant == g.ID() {
			return &use.Grants[i]
		}
	}
	use.Grants = append(use.Grants, wire.GrantUsage{Grant: g.ID(), Limits: wire.Limits(g.Limits)})
	return &use.Grants[len(use.Grants)-1]
}
