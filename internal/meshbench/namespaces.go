package meshbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/moatmesh/moat/internal/netns"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// Underlay and mesh addresses of the two namespace hosts. 198.18.0.0/15 is
// the range set aside for benchmarks (RFC 2544); it exists only inside the
// namespaces.
var (
	ulA, ulB     = netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.18.0.2/24")
	meshA, meshB = netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("100.64.0.2")
)

const wgPort, sinkPort = 51820, 5201

// NamespaceResult holds the two kernel-path figures.
type NamespaceResult struct {
	Veth float64 // raw veth between the namespaces, bits/s
	TUN  float64 // the engine on TUN over the same veth, bits/s
}

// NamespaceThroughput makes two namespaces joined by a veth pair and
// measures TCP throughput over the raw veth and then over two TUN engines
// (one child process per namespace, re-executing self with RunChild's
// arguments). It needs root.
func NamespaceThroughput(ctx context.Context, self string, d time.Duration) (NamespaceResult, error) {
	var r NamespaceResult
	if why := netns.Unavailable(); why != "" {
		return r, fmt.Errorf("namespaces: %s", why)
	}
	a, err := netns.New("moat-bench-a")
	if err != nil {
		return r, err
	}
	defer a.Close()
	b, err := netns.New("moat-bench-b")
	if err != nil {
		return r, err
	}
	defer b.Close()
	if err := netns.Veth(a, "ul0", ulA, b, "ul0", ulB); err != nil {
		return r, err
	}
	h := &harness{ctx: ctx, self: self}
	defer h.stop()

	if err := h.start(b, "sink", netip.AddrPortFrom(ulB.Addr(), sinkPort).String()); err != nil {
		return r, err
	}
	if r.Veth, err = h.send(a, netip.AddrPortFrom(ulB.Addr(), sinkPort), d); err != nil {
		return r, fmt.Errorf("veth: %w", err)
	}
	ka, _ := key.NewPrivate()
	kb, _ := key.NewPrivate()
	cfgA := tunConfig{Key: ka.Text(), Self: meshA, PeerKey: kb.Public(), Peer: meshB, PeerEP: netip.AddrPortFrom(ulB.Addr(), wgPort)}
	cfgB := tunConfig{Key: kb.Text(), Self: meshB, PeerKey: ka.Public(), Peer: meshA, PeerEP: netip.AddrPortFrom(ulA.Addr(), wgPort), Sink: true}
	for _, c := range []struct {
		ns  *netns.NS
		cfg tunConfig
	}{{a, cfgA}, {b, cfgB}} {
		js, _ := json.Marshal(c.cfg)
		if err := h.start(c.ns, "tun", string(js)); err != nil {
			return r, err
		}
	}
	if r.TUN, err = h.send(a, netip.AddrPortFrom(meshB, sinkPort), d); err != nil {
		return r, fmt.Errorf("tun: %w", err)
	}
	return r, nil
}

// harness runs child processes in namespaces and stops them all at the end.
type harness struct {
	ctx      context.Context
	self     string
	stoppers []func()
}

// start runs a long-lived child and waits until it prints "ready".
func (h *harness) start(ns *netns.NS, args ...string) error {
	cmd := ns.Command(h.ctx, h.self, append([]string{"child"}, args...)...)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	h.stoppers = append(h.stoppers, func() { in.Close(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "ready" {
			go io.Copy(io.Discard, out)
			return nil
		}
		fmt.Fprintln(os.Stderr, sc.Text())
	}
	return fmt.Errorf("child %s exited before it was ready", args[0])
}

// send runs a sender in ns (warm-up, then the measured run) and returns
// its rate.
func (h *harness) send(ns *netns.NS, dst netip.AddrPort, d time.Duration) (float64, error) {
	out, err := ns.Command(h.ctx, h.self, "child", "send", dst.String(), d.String()).Output()
	if err != nil {
		return 0, fmt.Errorf("sender: %w", err)
	}
	return strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
}

func (h *harness) stop() {
	for i := len(h.stoppers) - 1; i >= 0; i-- {
		h.stoppers[i]()
	}
}

// ChildProfileEnv names the environment variable that makes each TUN
// child write a CPU profile to its value plus "." and its mesh address.
const ChildProfileEnv = "MESHBENCH_CHILD_CPUPROFILE"

// StartProfile writes a CPU profile to path until stop is called.
func StartProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

type tunConfig struct {
	Key     string         `json:"key"`
	Self    netip.Addr     `json:"self"`
	PeerKey key.Public     `json:"peerKey"`
	Peer    netip.Addr     `json:"peer"`
	PeerEP  netip.AddrPort `json:"peerEp"`
	Sink    bool           `json:"sink"`
}

// RunChild is the child side of NamespaceThroughput: `child sink ADDR`,
// `child tun JSON` (both run until stdin closes) and `child send ADDR DUR`.
func RunChild(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("child: want MODE ARG")
	}
	switch args[0] {
	case "sink":
		stop, err := startSink(args[1])
		if err != nil {
			return err
		}
		defer stop()
		return readyUntilEOF()
	case "tun":
		return runTUNChild(args[1])
	case "send":
		d, err := time.ParseDuration(args[2])
		if err != nil {
			return err
		}
		bps, err := send(args[1], d)
		if err != nil {
			return err
		}
		fmt.Println(bps)
		return nil
	}
	return fmt.Errorf("child: unknown mode %q", args[0])
}

func runTUNChild(js string) error {
	var cfg tunConfig
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		return err
	}
	priv, err := key.ParsePrivate(cfg.Key)
	if err != nil {
		return err
	}
	if path := os.Getenv(ChildProfileEnv); path != "" {
		stop, err := StartProfile(path + "." + cfg.Self.String())
		if err != nil {
			return err
		}
		defer stop()
	}
	e, err := engine.New(engine.Config{PrivateKey: priv, ListenPort: wgPort, Backend: engine.TUN})
	if err != nil {
		return err
	}
	defer e.Close()
	nm := &wire.NetMap{
		Version: wire.Version,
		Self:    wire.Self{Key: priv.Public(), Addresses: []netip.Addr{cfg.Self}},
		Peers:   []wire.Peer{{Key: cfg.PeerKey, Addresses: []netip.Addr{cfg.Peer}, Endpoints: []netip.AddrPort{cfg.PeerEP}}},
	}
	if err := e.Reconfig(nm); err != nil {
		return err
	}
	if cfg.Sink {
		stop, err := startSink(netip.AddrPortFrom(cfg.Self, sinkPort).String())
		if err != nil {
			return err
		}
		defer stop()
	}
	return readyUntilEOF()
}

func readyUntilEOF() error {
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// The kernel figures use iperf3 at both ends when it is installed (as the
// figures in DESIGN.md were measured), and this package's Go sender and
// sink otherwise. Either way both figures of a ratio use the same tool.
func haveIperf() bool {
	_, err := exec.LookPath("iperf3")
	return err == nil
}

// startSink serves a sink on addr until stop is called.
func startSink(addr string) (stop func(), err error) {
	if haveIperf() {
		ap := netip.MustParseAddrPort(addr)
		cmd := exec.Command("iperf3", "--server", "--bind", ap.Addr().String(), "--port", strconv.Itoa(int(ap.Port())))
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		if err := waitListening(addr); err != nil {
			cmd.Process.Kill()
			return nil, err
		}
		return func() { cmd.Process.Kill(); cmd.Wait() }, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go Sink(ln)
	return func() { ln.Close() }, nil
}

// waitListening polls until something accepts TCP on addr.
func waitListening(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send measures throughput to a sink at addr for d, after a warm-up.
func send(addr string, d time.Duration) (float64, error) {
	if haveIperf() {
		return iperfSend(addr, d)
	}
	run := func(d time.Duration) (float64, error) {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return Send(c, d)
	}
	if _, err := run(d / 4); err != nil {
		return 0, err
	}
	return run(d)
}

func iperfSend(addr string, d time.Duration) (float64, error) {
	ap := netip.MustParseAddrPort(addr)
	secs := max(1, int(d.Seconds()))
	out, err := exec.Command("iperf3", "--client", ap.Addr().String(), "--port", strconv.Itoa(int(ap.Port())),
		"--time", strconv.Itoa(secs), "--omit", "1", "--json").Output()
	if err != nil {
		return 0, fmt.Errorf("iperf3: %w: %s", err, out)
	}
	var r struct {
		End struct {
			Received struct {
				BPS float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("iperf3 output: %w", err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	return r.End.Received.BPS, nil
}
