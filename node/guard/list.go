package guard

import (
	"fmt"
	"net/http"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/policy"
)

// list answers /v1/models, /v1/models/{model} and /api/tags with the
// models this node serves through the path's API family that the caller
// may use now (granted, MFA fresh enough, not stopped by
// SetModelUnavailable).
func (c *call) list() {
	var names []string
	if c.api.PathModel {
		c.model = c.api.PathModelName(c.r.URL.Path)
		if !c.listable(c.model) {
			c.refuse(http.StatusNotFound, reasonNotListed, fmt.Sprintf("model %q is not one you may use through the %s API on node %s", c.model, c.api.Family, c.g.cfg.NodeName), 0)
			return
		}
		names = []string{c.model}
	} else {
		for _, m := range c.who.models {
			if c.listable(m) {
				names = append(names, m)
			}
		}
	}
	llmapi.WriteJSON(c.w, http.StatusOK, llmapi.ListBody(c.api, names, "moat:"+c.g.cfg.NodeName, c.snap.created))
}

// listable reports whether the caller may use model m here now through
// the path's family.
func (c *call) listable(m string) bool {
	up := c.g.served[m]
	if up == nil || llmapi.Family(up.Kind) != c.api.Family {
		return false
	}
	if _, stopped := c.g.avail.load()[m]; stopped {
		return false
	}
	_, v := c.snap.table.Decide(c.who.key, m, c.mfaAge(), c.who.id.MFAMethod)
	return v == policy.Allow
}

// serveMetrics serves the Prometheus metrics to callers allowed to read
// them (see Config.MetricsTags).
func (c *call) serveMetrics() {
	if !mayScrape(c.who, c.g.cfg.MetricsTags) {
		c.refuse(http.StatusForbidden, "metrics_not_allowed", fmt.Sprintf("%s may not read this node's metrics; only admins and callers tagged %v may", c.who.who(), c.g.cfg.MetricsTags), 0)
		return
	}
	c.g.metrics.handler.ServeHTTP(c.w, c.r)
}
