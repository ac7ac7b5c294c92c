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
		ln, err := net.Listen("tcp", args[1])
		if err != nil {
			return err
		}
		go Sink(ln)
		return readyUntilEOF()
	case "tun":
		return runTUNChild(args[1])
	case "send":
		d, err := time.ParseDuration(args[2])
		if err != nil {
			return err
		}
		run := func(d time.Duration) (float64, error) {
			c, err := net.DialTimeout("tcp", args[1], 10*time.Second)
			if err != nil {
				return 0, err
			}
			defer c.Close()
			return Send(c, d)
		}
		if _, err := run(d / 4); err != nil {
			return err
		}
		bps, err := run(d)
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
		ln, err := e.Listen("tcp", fmt.Sprintf(":%d", sinkPort))
		if err != nil {
			return err
		}
		defer ln.Close()
		go Sink(ln)
	}
	return readyUntilEOF()
}

func readyUntilEOF() error {
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return nil
}
