package lockdown

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	droppedPackets = prometheus.NewDesc("moat_lockdown_dropped_packets_total",
		"Packets the lockdown refused, by category.", []string{"category"}, nil)
	droppedBytes = prometheus.NewDesc("moat_lockdown_dropped_bytes_total",
		"Bytes the lockdown refused, by category.", []string{"category"}, nil)
	applied = prometheus.NewDesc("moat_lockdown_applied",
		"1 when the lockdown table is in place, 0 when it is missing.", nil, nil)
)

// NewCollector exports the drop counters that status reports as
// Prometheus metrics, read afresh at every scrape.
func NewCollector(status func() (Status, error)) prometheus.Collector { return collector(status) }

// Collector exports this lockdown's drop counters.
func (l *Lockdown) Collector() prometheus.Collector { return NewCollector(l.Status) }

type collector func() (Status, error)

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- droppedPackets
	ch <- droppedBytes
	ch <- applied
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st, err := c()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(applied, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(applied, prometheus.GaugeValue, 1)
	for _, ctr := range st.Counters {
		ch <- prometheus.MustNewConstMetric(droppedPackets, prometheus.CounterValue, float64(ctr.Packets), ctr.Category)
		ch <- prometheus.MustNewConstMetric(droppedBytes, prometheus.CounterValue, float64(ctr.Bytes), ctr.Category)
	}
}
