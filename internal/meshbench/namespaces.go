package meshbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/moatmesh/moat/internal/netns"
	"github.com/moatmesh/moat/mesh/key"
)

// Underlay and mesh addresses of the two namespace hosts. 198.18.0.0/15 is
// the range set aside for benchmarks (RFC 2544); it exists only inside the
// namespaces. Two TUN pairs run side by side: one over direct UDP, one
// with only the relay (in namespace A) between its engines.
var (
	ulA, ulB         = netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.18.0.2/24")
	meshA, meshB     = netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("100.64.0.2")
	relayedA, relayB = netip.MustParseAddr("100.64.1.1"), netip.MustParseAddr("100.64.1.2")
)

const (
	wgPort, wgRelayedPort = 51820, 51821
	sinkPort, relayPort   = 5201, 8443
)

// Namespaces is the kernel-path topology: two namespaces joined by a veth
// pair, a sink in B on the veth, a TUN engine pair over direct UDP with a
// sink behind B's engine, and a second TUN pair whose only way between
// its engines is a relay over TLS served in A. Every engine, sink and
// relay is a child process (this executable re-run with RunChild's
// arguments), so the CPU of each figure is the children's.
type Namespaces struct {
	a, b *netns.NS
	h    *harness
}

// NamespaceOptions are the settings of StartNamespaces.
type NamespaceOptions struct {
	// RelayEnv is added to the relay child's environment alone, such as
	// "GOGC=400" to see what the relay process's garbage collection
	// costs. Default: none; the child inherits this process's.
	RelayEnv []string
}

// StartNamespaces builds the topology and starts its children. It needs
// root. Close removes it all.
func StartNamespaces(ctx context.Context, self string, opts NamespaceOptions) (_ *Namespaces, err error) {
	if why := netns.Unavailable(); why != "" {
		return nil, fmt.Errorf("namespaces: %s", why)
	}
	n := &Namespaces{h: &harness{ctx: ctx, self: self, relayEnv: opts.RelayEnv}}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if n.a, err = netns.New("moat-bench-a"); err != nil {
		return nil, err
	}
	if n.b, err = netns.New("moat-bench-b"); err != nil {
		return nil, err
	}
	if err := netns.Veth(n.a, "ul0", ulA, n.b, "ul0", ulB); err != nil {
		return nil, err
	}
	if err := n.h.start("sink", n.b, "sink", netip.AddrPortFrom(ulB.Addr(), sinkPort).String()); err != nil {
		return nil, err
	}
	if err := n.startPair(tunPair{name: "moatd0", port: wgPort, a: meshA, b: meshB}); err != nil {
		return nil, err
	}
	return n, n.startRelayedPair()
}

// tunPair is one pair of TUN engines, A and B.
type tunPair struct {
	name  string // of both TUN interfaces
	port  uint16 // both engines' UDP port
	a, b  netip.Addr
	relay *relayConfig // nil: direct UDP between the pair
}

func (n *Namespaces) startPair(p tunPair) error {
	ka, _ := key.NewPrivate()
	kb, _ := key.NewPrivate()
	cfgA := tunConfig{Name: p.name, Port: p.port, Key: ka.Text(), Self: p.a, PeerKey: kb.Public(), Peer: p.b, PeerEP: netip.AddrPortFrom(ulB.Addr(), p.port)}
	cfgB := tunConfig{Name: p.name, Port: p.port, Key: kb.Text(), Self: p.b, PeerKey: ka.Public(), Peer: p.a, PeerEP: netip.AddrPortFrom(ulA.Addr(), p.port), Sink: true}
	if p.relay != nil {
		// Nothing in the namespaces routes to TEST-NET-1: the relay is
		// the pair's only path.
		cfgA.PeerEP, cfgB.PeerEP = unreachable, unreachable
		cfgA.Relay, cfgB.Relay = p.relay, p.relay
		rc := *p.relay
		rc.Admit = []key.Public{ka.Public(), kb.Public()}
		js, _ := json.Marshal(rc)
		if err := n.h.start("relay", n.a, "relay", string(js)); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		ns   *netns.NS
		name string
		cfg  tunConfig
	}{{n.a, "engine A " + p.name, cfgA}, {n.b, "engine B " + p.name, cfgB}} {
		js, _ := json.Marshal(c.cfg)
		if err := n.h.start(c.name, c.ns, "tun", string(js)); err != nil {
			return err
		}
	}
	return nil
}

func (n *Namespaces) startRelayedPair() error {
	rc, err := newRelayConfig(netip.AddrPortFrom(ulA.Addr(), relayPort))
	if err != nil {
		return err
	}
	return n.startPair(tunPair{name: "moatr0", port: wgRelayedPort, a: relayedA, b: relayB, relay: rc})
}

// Veth measures TCP throughput over the raw veth, A to B.
func (n *Namespaces) Veth(d time.Duration) (Result, error) {
	return n.h.send(n.a, netip.AddrPortFrom(ulB.Addr(), sinkPort), d)
}

// TUN measures it through the TUN pair over direct UDP.
func (n *Namespaces) TUN(d time.Duration) (Result, error) {
	return n.h.send(n.a, netip.AddrPortFrom(meshB, sinkPort), d)
}

// TUNRelayed measures it through the TUN pair joined by the relay.
func (n *Namespaces) TUNRelayed(d time.Duration) (Result, error) {
	return n.h.send(n.a, netip.AddrPortFrom(relayB, sinkPort), d)
}

// Close stops the children and removes the namespaces.
func (n *Namespaces) Close() {
	n.h.stop()
	for _, ns := range []*netns.NS{n.b, n.a} {
		if ns != nil {
			ns.Close()
		}
	}
}

// harness runs child processes in namespaces and stops them all at the end.
type harness struct {
	ctx      context.Context
	self     string
	pids     []int    // of the long-lived children
	names    []string // theirs, by pids' index
	relay    int      // the relay child's pid (0: none)
	relayEnv []string // added to the relay child's environment
	// relayIn and relayOut talk to the relay child: a line written asks
	// for its drops so far, which it answers on a line (relayDrops).
	relayIn  io.Writer
	relayOut *bufio.Scanner
	stoppers []func()
}

// start runs a long-lived child, named name in the figures, and waits
// until it prints "ready".
func (h *harness) start(name string, ns *netns.NS, args ...string) error {
	cmd := ns.Command(h.ctx, h.self, append([]string{"child"}, args...)...)
	if args[0] == "relay" && len(h.relayEnv) > 0 {
		cmd.Env = append(os.Environ(), h.relayEnv...)
	}
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	h.stoppers = append(h.stoppers, func() { in.Close(); cmd.Wait() })
	h.pids = append(h.pids, cmd.Process.Pid) // `ip netns exec` execs in place
	h.names = append(h.names, name)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "ready" {
			if args[0] == "relay" {
				h.relay, h.relayIn, h.relayOut = cmd.Process.Pid, in, sc
			} else {
				go io.Copy(io.Discard, out)
			}
			return nil
		}
		fmt.Fprintln(os.Stderr, sc.Text())
	}
	return fmt.Errorf("child %s exited before it was ready", args[0])
}

// send runs a sender in ns (a warm-up, then the measured run) and
// returns its rate and the CPU per MiB that the sender and every
// long-lived child (engines, sinks, relay, and what they run) spent
// during the measured run. The kernel's work is in it as far as it ran
// in those processes' context, as a veth's and the TCP stack's mostly
// does. The relay's own share is in RelayCPUPerGbit.
func (h *harness) send(ns *netns.NS, dst netip.AddrPort, d time.Duration) (Result, error) {
	cmd := ns.Command(h.ctx, h.self, "child", "send", dst.String(), d.String())
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return Result{}, fmt.Errorf("sender: %w", err)
	}
	var before []cpuSplit
	var relayBefore time.Duration
	var dropsBefore int64
	var res []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == measuring {
			before, relayBefore, dropsBefore = h.childrenCPU(), h.relayCPU(), h.relayDrops()
			continue
		}
		res = strings.Fields(sc.Text())
	}
	after, relaySpent, drops := h.childrenCPU(), h.relayCPU()-relayBefore, h.relayDrops()-dropsBefore
	var spent time.Duration
	var used []ProcessCPU
	for i := range min(len(before), len(after)) {
		d := after[i].minus(before[i])
		spent += d.total()
		used = append(used, ProcessCPU{Name: h.names[i], User: d.User, Sys: d.Sys})
	}
	if err := cmd.Wait(); err != nil {
		return Result{}, fmt.Errorf("sender: %w", err)
	}
	const want = "BPS BYTES CPU-NS RETRANS"
	if len(res) != 4 {
		return Result{}, fmt.Errorf("sender: printed %q, want %s", res, want)
	}
	bps, err1 := strconv.ParseFloat(res[0], 64)
	n, err2 := strconv.ParseInt(res[1], 10, 64)
	own, err3 := strconv.ParseInt(res[2], 10, 64)
	retrans, err4 := strconv.ParseInt(res[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || n <= 0 {
		return Result{}, fmt.Errorf("sender: printed %q, want %s", res, want)
	}
	perGbit := func(t time.Duration) time.Duration { return time.Duration(float64(t) * 1e9 / float64(n*8)) }
	var procs []ProcessCPU
	for _, p := range append(used, ProcessCPU{Name: "sender", User: time.Duration(own)}) {
		procs = append(procs, ProcessCPU{Name: p.Name, User: perGbit(p.User), Sys: perGbit(p.Sys)})
	}
	return Result{
		Bps:             bps,
		CPUPerMiB:       (spent + time.Duration(own)) * (1 << 20) / time.Duration(n),
		RelayCPUPerGbit: perGbit(relaySpent),
		RelayDrops:      drops,
		Retransmits:     retrans,
		Processes:       procs,
	}, nil
}

// relayDrops asks the relay child for the packets it has dropped so far
// (0: no relay child, or no answer).
func (h *harness) relayDrops() int64 {
	if h.relayIn == nil {
		return 0
	}
	if _, err := fmt.Fprintln(h.relayIn, "drops"); err != nil || !h.relayOut.Scan() {
		return 0
	}
	n, _ := strconv.ParseInt(h.relayOut.Text(), 10, 64)
	return n
}

// relayCPU is the CPU the relay child has used so far (0: none runs).
func (h *harness) relayCPU() time.Duration {
	if h.relay == 0 {
		return 0
	}
	return treeCPU(h.relay)
}

// childrenCPU is the CPU each long-lived child and its descendants have
// used so far, by pids' index.
func (h *harness) childrenCPU() []cpuSplit {
	t := make([]cpuSplit, len(h.pids))
	for i, pid := range h.pids {
		t[i] = treeSplit(pid)
	}
	return t
}

func (h *harness) stop() {
	for i := len(h.stoppers) - 1; i >= 0; i-- {
		h.stoppers[i]()
	}
	h.stoppers, h.pids, h.names, h.relay, h.relayIn, h.relayOut = nil, nil, nil, 0, nil, nil
}

// The kernel figures use iperf3 at both ends when it is installed (as the
// figures in DESIGN.md were measured), and this package's Go sender and
// sink otherwise. Either way both figures of a ratio use the same tool.
func haveIperf() bool {
	_, err := exec.LookPath("iperf3")
	return err == nil
}
