package guard

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the guard's Prometheus metrics, on a registry of its own.
// Labels take only values from the configuration and fixed lists (a model
// the node does not serve counts as model "other"), so a caller cannot
// make series up.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // model, api, code
	refusals *prometheus.CounterVec   // reason
	tokens   *prometheus.CounterVec   // model, direction
	latency  *prometheus.HistogramVec // model
	ttft     *prometheus.HistogramVec // model
	inflight prometheus.Gauge
	abuse    *prometheus.CounterVec // kind
	handler  http.Handler
}

const otherModel = "other"

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "moat_guard_requests_total", Help: "Model requests by model, API and HTTP status.",
	}, []string{"model", "api", "code"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "moat_guard_refusals_total", Help: "Requests the guard refused or cut, by reason.",
	}, []string{"reason"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "moat_guard_tokens_total", Help: "Tokens by model and direction (in: prompt, out: answer).",
	}, []string{"model", "direction"})
	buckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "moat_guard_request_duration_seconds", Help: "Time from request to the end of the answer, by model.", Buckets: buckets,
	}, []string{"model"})
	m.ttft = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "moat_guard_time_to_first_token_seconds", Help: "Time from request to the first streamed event, by model.", Buckets: buckets,
	}, []string{"model"})
	m.inflight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "moat_guard_requests_in_flight", Help: "Model requests being answered.",
	})
	m.abuse = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "moat_guard_abuse_events_total", Help: "Abuse events raised by the per-identity tracker, by kind (burst, near-duplicates, logprobs).",
	}, []string{"kind"})
	m.reg.MustRegister(m.requests, m.refusals, m.tokens, m.latency, m.ttft, m.inflight, m.abuse)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// modelLabel returns model if the node serves it, else "other".
func modelLabel(served map[string]*upstream, model string) string {
	if served[model] != nil {
		return model
	}
	return otherModel
}

func (m *metrics) observe(c *call) {
	model := modelLabel(c.g.served, c.model)
	m.requests.WithLabelValues(model, c.api.Name, strconv.Itoa(c.status)).Inc()
	if c.reason != "" {
		m.refusals.WithLabelValues(c.reason).Inc()
	}
	if c.decision != "allow" {
		return
	}
	m.tokens.WithLabelValues(model, "in").Add(float64(c.tokensIn))
	m.tokens.WithLabelValues(model, "out").Add(float64(c.tokensOut))
	m.latency.WithLabelValues(model).Observe(c.elapsed.Seconds())
	if c.ttft > 0 {
		m.ttft.WithLabelValues(model).Observe(c.ttft.Seconds())
	}
}

// mayScrape reports whether c may read /metrics: admins, and callers
// carrying one of tags.
func mayScrape(c *caller, tags []string) bool {
	if c.id.Admin {
		return true
	}
	for _, t := range c.id.Tags {
		if slices.Contains(tags, t) {
			return true
		}
	}
	return false
}
