package lockdown

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// gather returns metric name → label value (or "") → value.
func gather(t *testing.T, c prometheus.Collector) map[string]map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		out[mf.GetName()] = map[string]float64{}
		for _, m := range mf.GetMetric() {
			label := ""
			if len(m.GetLabel()) > 0 {
				label = m.GetLabel()[0].GetValue()
			}
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			out[mf.GetName()][label] = v
		}
	}
	return out
}

func TestCollector(t *testing.T) {
	st := Status{Counters: []Counter{{Category: CatEgressTCP, Packets: 7, Bytes: 420}, {Category: CatIngressInference, Packets: 2, Bytes: 120}}}
	got := gather(t, NewCollector(func() (Status, error) { return st, nil }))
	if got["moat_lockdown_applied"][""] != 1 ||
		got["moat_lockdown_dropped_packets_total"][CatEgressTCP] != 7 ||
		got["moat_lockdown_dropped_bytes_total"][CatIngressInference] != 120 {
		t.Fatalf("metrics: %v", got)
	}
	gone := gather(t, NewCollector(func() (Status, error) { return Status{}, ErrNotApplied }))
	if gone["moat_lockdown_applied"][""] != 0 || len(gone["moat_lockdown_dropped_packets_total"]) != 0 {
		t.Fatalf("metrics without a table: %v", gone)
	}
}
