package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the coordinator's Prometheus metrics, on a registry of its
// own so that several coordinators can live in one test process.
type metrics struct {
	reg      *prometheus.Registry
	logins   *prometheus.CounterVec
	refusals *prometheus.CounterVec
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
	}
	m.opsMetrics = newOpsMetrics()
	m.reg.MustRegister(m.opsMetrics.collectors()...)
	m.reg.MustRegister(m.logins, m.refusals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(parts...)
	return m
}
