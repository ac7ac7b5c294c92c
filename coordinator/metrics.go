package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the coordinator's Prometheus metrics, on a registry of its
// own so that several coordinators can live in one test process.
type metrics struct {
	reg       *prometheus.Registry
	recompute prometheus.Histogram
	logins    *prometheus.CounterVec
	refusals  *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		recompute: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "moat_coordinator_netmap_recompute_seconds", Help: "Time to recompute every netmap.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_coordinator_logins_total", Help: "Completed sign-ins by kind.",
		}, []string{"kind"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "moat_coordinator_refusals_total", Help: "Refused requests by reason.",
		}, []string{"reason"}),
	}
	m.reg.MustRegister(m.recompute, m.logins, m.refusals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "moat_coordinator_netmap_streams", Help: "Open netmap streams.",
		}, func() float64 { return float64(s.hub.streams()) }),
	)
	return m
}
