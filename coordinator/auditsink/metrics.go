package auditsink

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the sinks' Prometheus metrics, shared by all runners.
type Metrics struct {
	backlog   *prometheus.GaugeVec
	delivered *prometheus.CounterVec
	errors    *prometheus.CounterVec
}

// NewMetrics makes the metrics and registers them with reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "moat_audit_sink_backlog",
			Help: "Events stored and not yet delivered, per sink and stream (records, admin).",
		}, []string{"sink", "stream"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_audit_sink_delivered_total",
			Help: "Events a sink's receiver took, per sink and stream.",
		}, []string{"sink", "stream"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_audit_sink_errors_total",
			Help: "Failed deliveries (each retried), per sink.",
		}, []string{"sink"}),
	}
	if reg != nil {
		reg.MustRegister(m.backlog, m.delivered, m.errors)
	}
	return m
}
