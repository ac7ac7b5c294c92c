package guard

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/moatmesh/moat/policy"
)

// list answers /v1/models and /api/tags with the models this node serves
// that the caller may use now (granted, MFA fresh enough, not stopped by
// SetModelUnavailable).
func (c *call) list() {
	var names []string
	age := c.mfaAge()
	down := c.g.avail.load()
	for _, m := range c.who.models {
		if _, stopped := down[m]; stopped {
			continue
		}
		if _, v := c.snap.table.Decide(c.who.key, m, age); v == policy.Allow {
			names = append(names, m)
		}
	}
	var v any
	if c.api.family == ollama {
		v = ollamaTags(names)
	} else {
		v = openAIModels(names, c.g.cfg.NodeName)
	}
	b, _ := json.Marshal(v)
	c.w.Header().Set("Content-Type", "application/json")
	c.w.Write(append(b, '\n'))
}

type openAIModel struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func openAIModels(names []string, node string) any {
	data := make([]openAIModel, 0, len(names))
	for _, n := range names {
		data = append(data, openAIModel{ID: n, Object: "model", OwnedBy: "moat:" + node})
	}
	return struct {
		Object string        `json:"object"`
		Data   []openAIModel `json:"data"`
	}{"list", data}
}

type ollamaModel struct {
	Name  string `json:"name"`
	Model string `json:"model"`
}

func ollamaTags(names []string) any {
	models := make([]ollamaModel, 0, len(names))
	for _, n := range names {
		models = append(models, ollamaModel{Name: n, Model: n})
	}
	return struct {
		Models []ollamaModel `json:"models"`
	}{models}
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
