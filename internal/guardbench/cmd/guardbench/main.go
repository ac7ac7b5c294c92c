// Command guardbench measures direct, nginx, Caddy and guard paths to
// one stand-in upstream over loopback and prints the comparisons as
// "ratio <name> <value>" and "metric <name> <value>" lines;
// scripts/bench-guard.sh runs it with nginx and Caddy. The paths: direct;
// nginx's proxy_pass; Caddy's reverse_proxy (the Go peer); the guard alone on loopback with every
// screening category on (guard_lo) and with none (guard_plain); the guard behind a
// netstack WireGuard pair (guard); and the employee's whole path, moat
// up's local endpoint in front of that same mesh and guard (router).
//
//	guardbench -upstream 127.0.0.1:PORT [-nginx http://127.0.0.1:PORT] [-caddy http://127.0.0.1:PORT]
//	guardbench -only direct,guard_lo -cpuprofile cpu.prof   # profile the guard
//
// Beside requests a second it prints this process's CPU time per request
// under load ("cpu"; nginx's and Caddy's own processes are not counted), which moves
// less than requests a second when other work shares the machine.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/moatmesh/moat/internal/guardbench"
)

func main() {
	upAddr := flag.String("upstream", "127.0.0.1:0", "address the stand-in upstream listens on (nginx proxies to it)")
	nginx := flag.String("nginx", "", "nginx's base URL; empty: skip nginx")
	caddy := flag.String("caddy", "", "Caddy's base URL (reverse_proxy to the upstream); empty: skip Caddy")
	n := flag.Int("n", 3000, "sequential requests for the latency percentiles")
	conc := flag.Int("c", 64, "callers for the throughput run")
	dur := flag.Duration("d", 3*time.Second, "length of each throughput run")
	streams := flag.Int("streams", 100, "streamed answers per path")
	chunks := flag.Int("chunks", 50, "chunks per streamed answer")
	every := flag.Duration("every", 2*time.Millisecond, "time between streamed chunks")
	only := flag.String("only", "", "comma-separated paths to measure (direct, nginx, caddy, guard_plain, guard_lo, guard, router); empty: all")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run (the guard, upstream and callers) to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile of the whole run to this file")
	flag.Parse()
	if *memProfile != "" {
		runtime.MemProfileRate = 4096
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal("guardbench: ", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal("guardbench: ", err)
		}
		defer pprof.StopCPUProfile()
	}
	var want []string
	if *only != "" {
		want = strings.Split(*only, ",")
	}
	peers := map[string]string{"nginx": *nginx, "caddy": *caddy}
	if err := run(*upAddr, peers, want, *n, *conc, *dur, *streams, *chunks, *every); err != nil {
		log.Fatal("guardbench: ", err)
	}
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err == nil {
			err = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
		if err != nil {
			log.Fatal("guardbench: ", err)
		}
	}
}

// result is one path's figures.
type result struct {
	name         string
	p50, p99     time.Duration
	rps          float64
	cpu          time.Duration // this process's CPU per request under load
	ttft         time.Duration // p50
	del50, del99 time.Duration // chunk delivery
}

// peerNames are the other proxies the guard is compared with, in order.
var peerNames = []string{"nginx", "caddy"}

func run(upAddr string, peers map[string]string, only []string, n, conc int, dur time.Duration, streams, chunks int, every time.Duration) error {
	base := time.Now()
	up, err := guardbench.StartUpstream(upAddr, base, chunks, every)
	if err != nil {
		return err
	}
	defer up.Close()
	dir, err := os.MkdirTemp("", "guardbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lo, err := guardbench.StartLoopback(up.URL, dir+"/lo", true)
	if err != nil {
		return err
	}
	defer lo.Close()
	plain, err := guardbench.StartLoopback(up.URL, dir+"/plain", false)
	if err != nil {
		return err
	}
	defer plain.Close()
	mesh, err := guardbench.StartMesh(up.URL, dir+"/mesh")
	if err != nil {
		return err
	}
	defer mesh.Close()
	rt, err := guardbench.StartRouter(mesh)
	if err != nil {
		return err
	}
	defer rt.Close()
	targets := []guardbench.Target{{Name: "direct", URL: up.URL, Client: guardbench.DirectClient()}}
	for _, name := range peerNames {
		if peers[name] != "" {
			targets = append(targets, guardbench.Target{Name: name, URL: peers[name], Client: guardbench.DirectClient()})
		}
	}
	targets = append(targets, guardbench.Target{Name: "guard_plain", URL: plain.URL, Client: plain.Client},
		guardbench.Target{Name: "guard_lo", URL: lo.URL, Client: lo.Client},
		guardbench.Target{Name: "guard", URL: mesh.URL, Client: mesh.Client},
		guardbench.Target{Name: "router", URL: rt.URL, Client: rt.Client})
	res := map[string]result{}
	for _, t := range targets {
		if only != nil && !slices.Contains(only, t.Name) {
			continue
		}
		r, err := measure(t, base, n, conc, dur, streams)
		if err != nil {
			return err
		}
		res[t.Name] = r
		fmt.Printf("%-11s latency p50 %7.1fµs p99 %7.1fµs | c=%d %8.0f req/s, cpu %5.1fµs/req | stream ttft p50 %7.1fµs, chunk delivery p50 %6.1fµs p99 %6.1fµs\n",
			r.name, us(r.p50), us(r.p99), conc, r.rps, us(r.cpu), us(r.ttft), us(r.del50), us(r.del99))
	}
	report(res)
	return personLoad(targets, res, dur)
}

// personLoad measures req/s at c=16, about what one person's programs
// (an agent, an editor, a script) run at once, through the employee's
// whole path against the guard over the same mesh and direct.
func personLoad(targets []guardbench.Target, res map[string]result, dur time.Duration) error {
	const c = 16
	rps := map[string]float64{}
	for _, t := range targets {
		if _, ok := res[t.Name]; !ok || (t.Name != "direct" && t.Name != "guard" && t.Name != "router") {
			continue
		}
		l, err := guardbench.Throughput(t, c, dur)
		if err != nil {
			return err
		}
		rps[t.Name] = l.RPS
		fmt.Printf("%-11s c=%d %8.0f req/s\n", t.Name, c, l.RPS)
	}
	if rt, g := rps["router"], rps["guard"]; rt > 0 && g > 0 {
		ratio("router_c16_rps/guard_c16_rps", rt/g, fmt.Sprintf("%.0f vs %.0f req/s", rt, g))
		ratio("router_c16_rps/direct_c16_rps", rt/rps["direct"], fmt.Sprintf("%.0f vs %.0f req/s", rt, rps["direct"]))
	}
	return nil
}

func measure(t guardbench.Target, base time.Time, n, conc int, dur time.Duration, streams int) (result, error) {
	r := result{name: t.Name}
	if _, err := guardbench.Latency(t, n/10+10); err != nil { // warm up connections and caches
		return r, err
	}
	lat, err := guardbench.Latency(t, n)
	if err != nil {
		return r, err
	}
	r.p50, r.p99 = guardbench.Pct(lat, 50), guardbench.Pct(lat, 99)
	l, err := guardbench.Throughput(t, conc, dur)
	if err != nil {
		return r, err
	}
	r.rps, r.cpu = l.RPS, l.CPUPerReq
	st, err := guardbench.Streams(t, streams, base)
	if err != nil {
		return r, err
	}
	r.ttft, r.del50, r.del99 = guardbench.Pct(st.TTFT, 50), guardbench.Pct(st.Delivery, 50), guardbench.Pct(st.Delivery, 99)
	return r, nil
}

func report(res map[string]result) {
	d, ok := res["direct"]
	if !ok {
		return // nothing to compare with
	}
	fmt.Println("# added = path minus direct; µs")
	for _, name := range []string{"nginx", "caddy", "guard_plain", "guard_lo", "guard", "router"} {
		r, ok := res[name]
		if !ok {
			continue
		}
		fmt.Printf("added %-11s p50 %7.1f p99 %7.1f ttft %7.1f chunk p50 %6.1f p99 %6.1f\n", name,
			us(r.p50-d.p50), us(r.p99-d.p99), us(r.ttft-d.ttft), us(r.del50-d.del50), us(r.del99-d.del99))
	}
	for _, peer := range peerNames {
		x, ok := res[peer]
		if !ok {
			fmt.Printf("# %s not measured: no ratios against it\n", peer)
			continue
		}
		for _, g := range []string{"guard_plain", "guard_lo", "guard"} {
			r, ok := res[g]
			if !ok {
				continue
			}
			p := "/" + peer
			ratio(g+"_rps"+p+"_rps", r.rps/x.rps, fmt.Sprintf("%.0f vs %.0f req/s", r.rps, x.rps))
			ratio(g+"_added_p50"+p+"_added_p50", div(r.p50-d.p50, x.p50-d.p50), fmt.Sprintf("%.1f vs %.1f µs", us(r.p50-d.p50), us(x.p50-d.p50)))
			ratio(g+"_added_p99"+p+"_added_p99", div(r.p99-d.p99, x.p99-d.p99), fmt.Sprintf("%.1f vs %.1f µs", us(r.p99-d.p99), us(x.p99-d.p99)))
			ratio(g+"_added_ttft"+p+"_added_ttft", div(r.ttft-d.ttft, x.ttft-d.ttft), fmt.Sprintf("%.1f vs %.1f µs", us(r.ttft-d.ttft), us(x.ttft-d.ttft)))
			ratio(g+"_added_chunk_p99"+p+"_added_chunk_p99", div(r.del99-d.del99, x.del99-d.del99), fmt.Sprintf("%.1f vs %.1f µs", us(r.del99-d.del99), us(x.del99-d.del99)))
		}
	}
	for _, name := range []string{"guard_lo", "guard", "router"} {
		if r, ok := res[name]; ok {
			metric(name+"_added_p50_us", us(r.p50-d.p50))
			metric(name+"_added_p99_us", us(r.p99-d.p99))
			metric(name+"_added_ttft_us", us(r.ttft-d.ttft))
			metric(name+"_added_chunk_p99_us", us(r.del99-d.del99))
		}
	}
	if lo, ok := res["guard_lo"]; ok {
		if g, ok := res["guard"]; ok {
			ratio("guard_rps/guard_lo_rps", g.rps/lo.rps, fmt.Sprintf("%.0f vs %.0f req/s", g.rps, lo.rps))
		}
	}
	if g, ok := res["guard"]; ok {
		if rt, ok := res["router"]; ok { // the same mesh and guard, with and without moat up's router
			metric("router_own_p50_us", us(rt.p50-g.p50))
			metric("router_own_p99_us", us(rt.p99-g.p99))
			ratio("router_rps/guard_rps", rt.rps/g.rps, fmt.Sprintf("%.0f vs %.0f req/s", rt.rps, g.rps))
		}
	}
	for _, g := range []string{"guard_lo", "guard", "router"} {
		r, ok := res[g]
		if !ok {
			continue
		}
		ratio(g+"_rps/direct_rps", r.rps/d.rps, fmt.Sprintf("%.0f vs %.0f req/s", r.rps, d.rps))
		ratio(g+"_cpu/direct_cpu", div(r.cpu, d.cpu), fmt.Sprintf("%.1f vs %.1f µs a request in this process", us(r.cpu), us(d.cpu)))
		ratio(g+"_p50/direct_p50", div(r.p50, d.p50), fmt.Sprintf("%.1f vs %.1f µs", us(r.p50), us(d.p50)))
	}
}

func ratio(name string, v float64, abs string) { fmt.Printf("ratio %s %.2f   (%s)\n", name, v, abs) }

// metric prints one figure for the summary table (internal/benchsummary).
func metric(name string, v float64) { fmt.Printf("metric %s %.1f\n", name, v) }

func div(a, b time.Duration) float64 {
	if b <= 0 {
		b = time.Microsecond // the peer added nothing measurable: compare against 1 µs
	}
	return float64(a) / float64(b)
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
