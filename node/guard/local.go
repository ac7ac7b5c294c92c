package guard

import (
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// ServeLocal answers GET /metrics (Prometheus, with no identity check)
// and GET /healthz on ln, a listener the operator keeps on the host
// (moat-node --metrics-listen 127.0.0.1:9464) for a local Prometheus or
// agent. /healthz is 200 while at least one model is available and 503
// naming the stopped models otherwise. Close and Shutdown stop it too.
func (g *Guard) ServeLocal(ln net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", g.metrics.handler)
	mux.HandleFunc("GET /healthz", g.health)
	return g.run(&http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}, ln)
}

func (g *Guard) health(w http.ResponseWriter, _ *http.Request) {
	down := g.avail.load()
	if len(down) < len(g.served) {
		fmt.Fprintf(w, "ok: %d of %d models available\n", len(g.served)-len(down), len(g.served))
		return
	}
	w.WriteHeader(http.StatusServiceUnavailable)
	fmt.Fprintln(w, "no model available:")
	for _, name := range slices.Sorted(maps.Keys(down)) {
		fmt.Fprintf(w, "  %s: %s\n", name, down[name])
	}
}

var modelAvailableDesc = prometheus.NewDesc("moat_guard_model_available",
	"1 when the model is served, 0 when it is stopped (integrity check, operator).", []string{"model"}, nil)

// runtimeCollectors are the go_ and process_ series and each model's
// availability.
func (g *Guard) runtimeCollectors() []prometheus.Collector {
	return []prometheus.Collector{
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		availabilityCollector{g},
	}
}

type availabilityCollector struct{ g *Guard }

func (availabilityCollector) Describe(ch chan<- *prometheus.Desc) { ch <- modelAvailableDesc }

func (c availabilityCollector) Collect(ch chan<- prometheus.Metric) {
	down := c.g.avail.load()
	for name := range c.g.served {
		v := 1.0
		if _, stopped := down[name]; stopped {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(modelAvailableDesc, prometheus.GaugeValue, v, name)
	}
}

// RegisterCollector adds c to the metrics the guard serves, for parts
// started after the guard (the node's integrity checker).
func (g *Guard) RegisterCollector(c prometheus.Collector) error {
	return g.metrics.reg.Register(c)
}
