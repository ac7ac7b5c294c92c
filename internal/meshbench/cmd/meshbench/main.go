// Command meshbench prints moat's mesh throughput beside its baselines,
// all measured in this one run:
//
//	ratio netstack/tsnet  — the userspace engine against tailscale's tsnet
//	ratio relayed/direct  — the userspace pair through the relay against
//	                        the same pair over UDP, each run side by side,
//	                        with the CPU per MiB of both and the packets
//	                        the relay dropped
//	ratio tun/veth        — the TUN engine against the raw veth under it,
//	                        with the CPU per byte of both
//	ratio tun-relayed/direct — a TUN pair through the relay (over TLS, in
//	                        the namespaces) against the direct TUN pair,
//	                        the relay process's own CPU per Gbit, each
//	                        process's user and system CPU per Gbit, the
//	                        packets the relay dropped and the sender's
//	                        TCP retransmitted
//
// Run it with `make bench`; the namespace figures need root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/moatmesh/moat/internal/meshbench"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "child" {
		if err := meshbench.RunChild(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "meshbench child:", err)
			os.Exit(1)
		}
		return
	}
	d := flag.Duration("d", 5*time.Second, "how long each measured transfer runs")
	only := flag.String("only", "", "run only this figure: netstack, relay (with netstack), tsnet or kernel")
	runs := flag.Int("runs", 3, "how many times each pair is measured: netstack direct and relayed, and veth, TUN and TUN relayed, in turn")
	relayGOGC := flag.String("relay-gogc", "", "GOGC for the relay child of the namespace figures alone (default: as this process's)")
	cpuprofile := flag.String("cpuprofile", "", "write CPU profiles: this process's (the userspace figures) to this file, each TUN engine's to this file plus its mesh address")
	flag.Parse()
	if *cpuprofile != "" {
		stop, err := meshbench.StartProfile(*cpuprofile)
		if err != nil {
			fail(err)
		}
		defer stop()
		os.Setenv(meshbench.ChildProfileEnv, *cpuprofile)
	}
	want := func(name string) bool { return *only == "" || *only == name }
	ctx := context.Background()
	self, err := os.Executable()
	if err != nil {
		fail(err)
	}

	var ns, ts float64
	if want("netstack") || want("relay") {
		ns = netstackFigures(ctx, *d, *runs, want("relay"))
	}
	if want("tsnet") {
		ts, err = meshbench.TsnetThroughput(ctx, *d)
		report("tsnet pair (tailscale, userspace)", ts, err)
	}
	ratio("netstack/tsnet", ns, ts)
	if want("kernel") {
		var opts meshbench.NamespaceOptions
		if *relayGOGC != "" {
			opts.RelayEnv = []string{"GOGC=" + *relayGOGC}
		}
		kernelFigures(ctx, self, *d, *runs, opts)
	}
}

// kernelFigures measures the raw veth, the TUN pair and the relayed TUN
// pair in turn, runs times, each ratio from figures of the same run.
func kernelFigures(ctx context.Context, self string, d time.Duration, runs int, opts meshbench.NamespaceOptions) {
	n, err := meshbench.StartNamespaces(ctx, self, opts)
	if err != nil {
		fmt.Printf("kernel figures skipped: %v\n", err)
		return
	}
	defer n.Close()
	for range max(runs, 1) {
		fmt.Printf("load average %s\n", loadAverage())
		veth, err := n.Veth(d)
		reportKernel("raw veth between namespaces", "veth", veth, err)
		tun, err := n.TUN(d)
		reportKernel("TUN pair across namespaces (moat engine)", "tun", tun, err)
		relayed, err := n.TUNRelayed(d)
		reportKernel("TUN pair through the relay (TLS)", "tun_relayed", relayed, err)
		if err == nil {
			// The relay's cost apart from the engines': what a relay
			// (the coordinator) needs per Gbit/s it carries.
			fmt.Printf("metric relay_cpu_ms_per_gbit %.1f\n", ms(relayed.RelayCPUPerGbit))
			fmt.Printf("metric tun_relayed_drops %d\n", relayed.RelayDrops)
			// Where the relayed path's CPU goes, process by process.
			for _, p := range relayed.Processes {
				switch {
				case p.Name == "sender":
					fmt.Printf("  cpu per Gbit %-22s user+sys %4.0f ms\n", p.Name, ms(p.User))
				case p.User+p.Sys > 0:
					fmt.Printf("  cpu per Gbit %-22s user %4.0f ms  sys %4.0f ms\n", p.Name, ms(p.User), ms(p.Sys))
				}
			}
		}
		ratio("tun/veth", tun.Bps, veth.Bps)
		ratio("tun-relayed/direct", relayed.Bps, tun.Bps)
	}
}

// reportKernel is reportCPU with the CPU per byte as a metric too.
func reportKernel(name, metric string, r meshbench.Result, err error) {
	reportCPU(name, r, err)
	if err == nil {
		fmt.Printf("metric %s_cpu_ns_per_byte %.2f\n", metric, float64(r.CPUPerMiB)/(1<<20))
		fmt.Printf("metric %s_retransmits %d\n", metric, r.Retransmits)
	}
}

// netstackFigures measures the netstack pair direct and, when relayed,
// through the relay, in turn runs times: the machine's load moves between
// runs, so each relayed figure is set beside the direct one just before
// it, and the summary takes the medians. It returns the median direct
// rate.
func netstackFigures(ctx context.Context, d time.Duration, runs int, relayed bool) float64 {
	var direct []float64
	for range max(runs, 1) {
		fmt.Printf("load average %s\n", loadAverage())
		dr, err := meshbench.NetstackThroughput(ctx, d)
		reportCPU("netstack pair (moat engine, userspace)", dr, err)
		if err != nil {
			continue
		}
		direct = append(direct, dr.Bps)
		if !relayed {
			continue
		}
		rr, err := meshbench.RelayedThroughput(ctx, d)
		reportCPU("netstack pair through the relay (TLS)", rr, err)
		if err != nil {
			continue
		}
		fmt.Printf("metric relayed_drops %d\n", rr.RelayDrops)
		ratio("relayed/direct", rr.Bps, dr.Bps)
		fmt.Printf("metric direct_cpu_ms_per_mib %.2f\n", ms(dr.CPUPerMiB))
		fmt.Printf("metric relayed_cpu_ms_per_mib %.2f\n", ms(rr.CPUPerMiB))
		// What the rate ratio would be were CPU the only limit.
		fmt.Printf("ratio relayed/direct-by-cpu %.2f\n", float64(dr.CPUPerMiB)/float64(rr.CPUPerMiB))
	}
	if len(direct) == 0 {
		return 0
	}
	slices.Sort(direct)
	return direct[len(direct)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadAverage is the system's load over 1, 5 and 15 minutes.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

func reportCPU(name string, r meshbench.Result, err error) {
	report(name, r.Bps, err)
	if err == nil {
		fmt.Printf("%-44s %.2f ms CPU per MiB\n", "", ms(r.CPUPerMiB))
	}
}

func report(name string, bps float64, err error) {
	if err != nil {
		fmt.Printf("%-44s failed: %v\n", name, err)
		return
	}
	fmt.Printf("%-44s %s\n", name, meshbench.Gbps(bps))
}

func ratio(name string, x, base float64) {
	if x == 0 || base == 0 {
		fmt.Printf("ratio %s n/a\n", name)
		return
	}
	fmt.Printf("ratio %s %.2f  (%s vs %s)\n", name, x/base, meshbench.Gbps(x), meshbench.Gbps(base))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "meshbench:", err)
	os.Exit(1)
}
