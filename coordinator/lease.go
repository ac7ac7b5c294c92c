package coordinator

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// leaseTTL is how long a node may admit on a lease before it must ask
// again (and return what it did not use).
const leaseTTL = time.Minute

// usageDays is how many days of usage counters the sweeper keeps.
const usageDays = 62

// usageMinutes is how many minutes of rpm and tpm counters the sweeper
// keeps: a lease counts only in the current one.
const usageMinutes = 10

// lease hands a node units of a person's limit under a grant: tokens of
// the daily quota, of a budget (budgets.go), or requests and tokens of
// the current minute (leaseMinute): POST /api/v1/node/lease (node
// credential; wire.LeaseRequest). The limit is the one in this
// coordinator's policy, so a quota change holds for the next lease on
// every node. The counters live in the store (usage_day, usage_minute),
// apart from audit records, and each lease is one statement, so replicas
// never hand out the same units twice.
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
	case (req.Day < today-1 || req.Day > today+1) && req.Kind != wire.LeaseRPM && req.Kind != wire.LeaseTPM:
		apiError(c, http.StatusBadRequest, "bad_request", "day: want the UTC day number of now")
		return
	}
	lim, ok := s.grantLimits(c, req.Grant)
	switch {
	case !ok:
		apiError(c, http.StatusNotFound, "no_such_grant", "the policy in force has no grant "+req.Grant)
		return
	case req.Kind == wire.LeaseTokens || req.Kind == wire.LeaseMoney:
		s.leaseBudgets(c, req, now)
		return
	case req.Kind == wire.LeaseRPM:
		s.leaseMinute(c, req, int64(lim.RPM), now)
		return
	case req.Kind == wire.LeaseTPM:
		s.leaseMinute(c, req, int64(lim.TPM), now)
		return
	case req.Kind != "":
		apiError(c, http.StatusBadRequest, "bad_request", `kind: want "", "tokens", "money", "rpm" or "tpm"`)
		return
	}
	limit := lim.TokensPerDay
	res := wire.LeaseResponse{Limit: limit, Expires: now.Add(leaseTTL), Now: now}
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

// leaseMinute answers a lease of a grant's rpm or tpm (req.Kind), whose
// limit in the policy in force is limit: requests or tokens of the
// current UTC minute of this coordinator's clock, one clock for every
// node, so the count holds whatever the nodes' clocks say. The lease
// expires with the minute; what the node returns or admitted on its own
// counts only while the minute it belongs to (req.Window) lasts.
func (s *Server) leaseMinute(c *gin.Context, req wire.LeaseRequest, limit int64, now time.Time) {
	window := now.Unix() / 60
	res := wire.LeaseResponse{Limit: limit, Window: window, Now: now, Expires: time.Unix((window+1)*60, 0)}
	if limit > 0 {
		ret, extra := req.Return, req.Extra
		if req.Window != window { // that minute is over: nothing to give back
			ret, extra = 0, 0
		}
		var err error
		res.Granted, res.Used, err = s.store.LeaseMinute(c.Request.Context(), req.Who, req.Grant+":"+req.Kind, window, limit, req.Want, ret, extra)
		if err != nil {
			s.internal(c, "lease "+req.Kind, err)
			return
		}
	}
	c.JSON(http.StatusOK, res)
}

// grantLimits are the limits of grant ("grants[N]") in the policy in
// force; false when there is no such grant.
func (s *Server) grantLimits(c *gin.Context, grant string) (policy.Limits, bool) {
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(grant, "grants["), "]"))
	p := s.PolicyInForce(c.Request.Context())
	if err != nil || p == nil || n < 0 || n >= len(p.Grants) || p.Grants[n].ID() != grant {
		return policy.Limits{}, false
	}
	return p.Grants[n].Limits, true
}
