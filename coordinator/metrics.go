package coordinator

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the coordinator's Prometheus metrics, on a registry of its
// own so that several coordinators can live in one test process.
type metrics struct {
	reg      *prometheus.Registry
	logins   *prometheus.CounterVec
	refusals *prometheus.CounterVec
	// rechecks counts re-checks of people at the IdP by outcome
	// (idprecheck.go).
	rechecks *prometheus.CounterVec
	// spend is what answered requests cost by model, in micro-units of
	// the policy's currency (see spend.go).
	spend *prometheus.CounterVec
	opsMetrics
}

// newMetrics registers the coordinator's metrics and those of its parts
// (the netmap fan-out's).
func newMetrics(parts ...prometheus.Collector) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_coordinator_logins_total", Help: "Completed sign-ins by kind.",
		}, []string{"kind"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_coordinator_refusals_total", Help: "Refused requests by reason.",
		}, []string{"reason"}),
		rechecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_coordinator_idp_rechecks_total", Help: "Re-checks of people at the identity provider by result: ok, gone (disabled), error (the IdP could not be asked; nobody disabled).",
		}, []string{"result"}),
		spend: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_spend_micros_total", Help: "What answered requests cost at the policy's prices, in millionths of its currency, by model and currency (as nodes report it in audit records).",
		}, []string{"model", "currency"}),
	}
	m.opsMetrics = newOpsMetrics()
	m.reg.MustRegister(m.opsMetrics.collectors()...)
	m.reg.MustRegister(m.logins, m.refusals, m.rechecks, m.spend,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(parts...)
	return m
}

// MetricsHandler serves the coordinator's metrics in Prometheus's text
// format, to anyone who reaches it. The coordinator's own /metrics route
// asks for an admin API token first; serve also offers this handler
// without one on a separate address (--metrics-listen) for a scraper on
// a private network.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.mx.reg, promhttp.HandlerOpts{})
}
