// Command meshbench prints moat's mesh throughput beside its baselines,
// all measured in this one run:
//
//	ratio netstack/tsnet  — the userspace engine against tailscale's tsnet
//	ratio tun/veth        — the TUN engine against the raw veth under it
//
// Run it with `make bench`; the namespace figures need root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
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
	only := flag.String("only", "", "run only this figure: netstack, tsnet or kernel")
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
	var k meshbench.NamespaceResult
	if want("netstack") {
		ns, err = meshbench.NetstackThroughput(ctx, *d)
		report("netstack pair (moat engine, userspace)", ns, err)
	}
	if want("tsnet") {
		ts, err = meshbench.TsnetThroughput(ctx, *d)
		report("tsnet pair (tailscale, userspace)", ts, err)
	}
	if want("kernel") {
		k, err = meshbench.NamespaceThroughput(ctx, self, *d)
		if err != nil {
			fmt.Printf("kernel figures skipped: %v\n", err)
		} else {
			report("raw veth between namespaces", k.Veth, nil)
			report("TUN pair across namespaces (moat engine)", k.TUN, nil)
		}
	}
	ratio("netstack/tsnet", ns, ts)
	ratio("tun/veth", k.TUN, k.Veth)
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
