package coordinator

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
)

// leaseTTL is how long a node may admit on a lease before it must ask
// again (and return what it did not use).
const leaseTTL = time.Minute

// usageDays is how many days of usage counters the sweeper keeps.
const usageDays = 62

// lease hands a node tokens of a person's daily quota under a grant:
// POST /api/v1/node/lease (node credential; wire.LeaseRequest). The
// limit is the one in this coordinator's policy, so a quota change holds
// for the next lease on every node. The counter lives in the store
// (usage_day), apart from audit records, and each lease is one
// statement, so replicas never hand out the same tokens twice.
func (s *Server) lease(c *gin.Context) {
	if device(c).Kind != store.KindNode {
		apiError(c, http.StatusForbidden, "not_a_node", "only nodes lease quota")
		return
	}
	var req wire.LeaseRequest
	if !decode(c, limitSmall, &req) {
		return
	}
	now := s.cfg.Now()
	today := now.UTC().Unix() / 86400
	switch {
	case req.Who == "" || len(req.Who) > 200:
		apiError(c, http.StatusBadRequest, "bad_request", "who: want the limit key (at most 200 characters)")
		return
	case req.Want < 0 || req.Return < 0 || req.Extra < 0:
		apiError(c, http.StatusBadRequest, "bad_request", "want, return and extra are token counts, not negative")
		return
	case req.Day < today-1 || req.Day > today+1:
		apiError(c, http.StatusBadRequest, "bad_request", "day: want the UTC day number of now")
		return
	}
	limit, ok := s.dayLimit(c, req.Grant)
	switch {
	case !ok:
		apiError(c, http.StatusNotFound, "no_such_grant", "the policy in force has no grant "+req.Grant)
		return
	case req.Kind == wire.LeaseTokens || req.Kind == wire.LeaseMoney:
		s.leaseBudgets(c, req, now)
		return
	case req.Kind != "":
		apiError(c, http.StatusBadRequest, "bad_request", `kind: want "", "tokens" or "money"`)
		return
	}
	res := wire.LeaseResponse{Limit: limit, Expires: now.Add(leaseTTL)}
	if limit > 0 {
		var err error
		res.Granted, res.Used, err = s.store.Lease(c.Request.Context(), req.Who, req.Grant, req.Day, limit, req.Want, req.Return, req.Extra)
		if err != nil {
			s.internal(c, "lease quota", err)
			return
		}
	}
	c.JSON(http.StatusOK, res)
}

// dayLimit is the tokensPerDay of grant ("grants[N]") in the policy in
// force; false when there is no such grant.
func (s *Server) dayLimit(c *gin.Context, grant string) (int64, bool) {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(grant, "grants["), "]"))
	p := s.PolicyInForce(c.Request.Context())
	if err != nil || p == nil || n < 0 || n >= len(p.Grants) || p.Grants[n].ID() != grant {
		return 0, false
	}
	return p.Grants[n].Limits.TokensPerDay, true
}
