package benchsummary

import (
	"strings"
	"testing"
)

const sample = `goos: linux
BenchmarkNetmapFanout10k-2   	       3	 812345678 ns/op	       612.0 revoke-p99-ms	       740.5 peak-heap-MiB	       1500 save-p99-ms
BenchmarkNetmapFanout10k-2   	       3	 812345678 ns/op	       100.0 revoke-p99-ms	       740.5 peak-heap-MiB	        900 save-p99-ms
BenchmarkNetmapFanout10k-2   	       3	 812345678 ns/op	       120.0 revoke-p99-ms	       740.5 peak-heap-MiB	        800 save-p99-ms
ratio tun/veth 0.16  (1.1 vs 7 Gbit/s)
ratio tun-relayed/direct 0.30  (0.3 vs 1 Gbit/s)
ratio tun-relayed/direct 0.60  (0.6 vs 1 Gbit/s)
metric router_added_p50_us 250.0
metric router_own_p50_us 140.0
BenchmarkScreenInput4K/EveryCategory-2 	   10000	     84583 ns/op	  49.89 MB/s	  57.73 min-µs	  67.58 p50-µs	  202.8 p99-µs	  3.000 p99/p50	  685 B/op	  3 allocs/op
BenchmarkBroken-2 FAIL
`

func TestSummary(t *testing.T) {
	figs, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got := figs["BenchmarkNetmapFanout10k save-p99-ms"]; len(got) != 3 || Median(got) != 900 {
		t.Fatalf("save p99 %v", got)
	}
	var b strings.Builder
	Write(&b, Targets, figs)
	rows := map[string]string{} // figure → the rest of its row, spaces squeezed
	for _, l := range strings.Split(b.String(), "\n") {
		for _, t := range Targets {
			if strings.Contains(l, t.What) {
				rows[t.What] = strings.Join(strings.Fields(l[strings.Index(l, t.What)+len(t.What):]), " ")
			}
		}
	}
	for what, want := range map[string]string{
		"netmap fan-out to 10,000 devices, policy save p99":     "900 ms ≤ 1000 ms MET (median of 3)", // of 1500, 900, 800
		"netmap fan-out to 10,000 devices, revocation p99":      "120 ms ≤ 250 ms MET (median of 3)",
		"netmap fan-out to 50,000 devices, policy save p99":     "- ≤ 2000 ms not measured",
		"TUN engine throughput ÷ raw veth":                      "0.16× ≥ 0.2× not met",
		"relayed ÷ direct throughput, TUN pair":                 "0.45× ≥ 0.5× not met (median of 2)",
		"relayed ÷ direct throughput, netstack pair":            "- ≥ 0.5× not measured",
		"employee path (router+mesh+guard) added p50 vs direct": "250 µs ≤ 300 µs MET",
		"router's own share of p50 (router path − guard path)":  "140 µs ≤ 100 µs not met",
		"4 KiB prompt, every category on, p99":                  "203 µs ≤ 150 µs not met", // a sub-benchmark's name
	} {
		if rows[what] != want {
			t.Errorf("%s: %q, want %q\n%s", what, rows[what], want, b.String())
		}
	}
}
