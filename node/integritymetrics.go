package node

import "github.com/prometheus/client_golang/prometheus"

var integrityOKDesc = prometheus.NewDesc("moat_node_model_integrity_ok",
	"1 when the model's pinned weights file matched its sha256 at the last check, 0 when it did not or was not checked yet.",
	[]string{"model"}, nil)

// Collector reports each pinned model's integrity (for the
// integrity-mismatch alert). It reads the checker's status at each
// scrape; a nil checker (no pinned model) reports nothing.
func (in *integrity) Collector() prometheus.Collector { return integrityCollector{in} }

type integrityCollector struct{ in *integrity }

func (integrityCollector) Describe(ch chan<- *prometheus.Desc) { ch <- integrityOKDesc }

func (c integrityCollector) Collect(ch chan<- prometheus.Metric) {
	if c.in == nil {
		return
	}
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	for name, st := range c.in.status {
		v := 0.0
		if st.OK {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(integrityOKDesc, prometheus.GaugeValue, v, name)
	}
}
