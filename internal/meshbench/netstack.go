package meshbench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"time"

	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/mesh/wire"
)

// Result is one throughput measure: the rate and the CPU this process
// spent (user and system, every goroutine: both engines and, relayed,
// the relay) per MiB carried, steadier than the rate on a loaded machine.
type Result struct {
	Bps       float64
	CPUPerMiB time.Duration
	// RelayCPUPerGbit is the CPU the relay process alone spent per Gbit
	// carried (in CPUPerMiB too); set by the namespace figures, where the
	// relay is a process of its own.
	RelayCPUPerGbit time.Duration
	// RelayDrops is how many packets the relay dropped during the
	// measured run (relayed figures only): DERP drops a packet when the
	// receiving member's send queue is full, and the inner TCP takes
	// each drop as congestion.
	RelayDrops int64
	// Retransmits is how many TCP segments the sender's kernel
	// retransmitted during the measured run (namespace figures only).
	Retransmits int64
	// Processes is the CPU each process spent per Gbit carried during
	// the measured run (namespace figures only): every long-lived child,
	// in user and system time, and the sender, whose user and system time
	// are both in User.
	Processes []ProcessCPU
}

// ProcessCPU is one process's CPU per Gbit carried.
type ProcessCPU struct {
	Name      string
	User, Sys time.Duration
}

// NetstackThroughput runs two engines on the netstack backend in this
// process, joined over loopback UDP, and measures TCP bulk throughput from
// one to the other for d after a warm-up.
func NetstackThroughput(ctx context.Context, d time.Duration) (Result, error) {
	return netstackPair(ctx, d, false)
}

// RelayedThroughput is NetstackThroughput with no UDP path between the
// engines: every packet goes through a relay in this process, over TLS
// on loopback, as a member whose network drops UDP reaches the mesh.
func RelayedThroughput(ctx context.Context, d time.Duration) (Result, error) {
	return netstackPair(ctx, d, true)
}

// unreachable is an endpoint in TEST-NET-1, where nothing answers.
var unreachable = netip.MustParseAddrPort("192.0.2.1:51820")

func netstackPair(ctx context.Context, d time.Duration, relayed bool) (Result, error) {
	a, err := newEngine(1)
	if err != nil {
		return Result{}, err
	}
	defer a.eng.Close()
	b, err := newEngine(2)
	if err != nil {
		return Result{}, err
	}
	defer b.eng.Close()
	nma, nmb := a.netmap(b), b.netmap(a)
	if relayed {
		stop, err := serveRelay(a, b)
		if err != nil {
			return Result{}, err
		}
		defer stop()
		nma.Peers[0].Endpoints = []netip.AddrPort{unreachable}
		nmb.Peers[0].Endpoints = []netip.AddrPort{unreachable}
	}
	if err := a.eng.Reconfig(nma); err != nil {
		return Result{}, err
	}
	if err := b.eng.Reconfig(nmb); err != nil {
		return Result{}, err
	}
	ln, err := b.eng.Listen("tcp", ":5201")
	if err != nil {
		return Result{}, err
	}
	defer ln.Close()
	go Sink(ln)
	dst := netip.AddrPortFrom(b.addr, 5201).String()
	run := func(d time.Duration) (Result, error) {
		c, err := a.eng.Dial(ctx, "tcp", dst)
		if err != nil {
			return Result{}, fmt.Errorf("dial %s: %w", dst, err)
		}
		defer c.Close()
		cpu0, drops0 := cpuTime(), relay.DropTotal()
		n, elapsed, err := sendCount(c, d)
		if err != nil || n == 0 {
			return Result{}, err
		}
		return Result{
			Bps:        float64(n) * 8 / elapsed.Seconds(),
			CPUPerMiB:  (cpuTime() - cpu0) * (1 << 20) / time.Duration(n),
			RelayDrops: relay.DropTotal() - drops0,
		}, nil
	}
	if _, err := run(d / 4); err != nil { // warm-up: handshake, buffers
		return Result{}, err
	}
	r, err := run(d)
	if err != nil {
		return Result{}, err
	}
	want := engine.PathDirect
	if relayed {
		want = engine.PathRelay
	}
	if got := pathOf(a.eng, b.eng.PublicKey()); got != want {
		return Result{}, fmt.Errorf("the pair's path was %q, want %q", got, want)
	}
	return r, nil
}

// serveRelay serves a relay over TLS on loopback that admits the two
// engines, and points both at it.
func serveRelay(a, b *benchEngine) (stop func(), err error) {
	known := map[key.Public]bool{a.eng.PublicKey(): true, b.eng.PublicKey(): true}
	s, err := relay.NewServer(relay.ServerConfig{Admit: func(_ context.Context, k key.Public) bool { return known[k] }})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(relay.Path, s)
	ts := httptest.NewTLSServer(mux)
	stop = func() { ts.Close(); s.Close() }
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	conf := &tls.Config{RootCAs: pool, ServerName: "example.com"}
	for _, e := range []*benchEngine{a, b} {
		if err := e.eng.SetRelay(ts.URL+relay.Path, conf, nil); err != nil {
			stop()
			return nil, err
		}
	}
	return stop, nil
}

// pathOf is how e reaches the peer with key k ("" if not configured).
func pathOf(e *engine.Engine, k key.Public) string {
	ps, err := e.Peers()
	if err != nil {
		return ""
	}
	for _, p := range ps {
		if p.Key.Equal(k) {
			return p.Path
		}
	}
	return ""
}

type benchEngine struct {
	eng  *engine.Engine
	addr netip.Addr
}

func newEngine(n byte) (*benchEngine, error) {
	priv, err := key.NewPrivate()
	if err != nil {
		return nil, err
	}
	e, err := engine.New(engine.Config{PrivateKey: priv})
	if err != nil {
		return nil, err
	}
	return &benchEngine{eng: e, addr: netip.AddrFrom4([4]byte{100, 64, 0, n})}, nil
}

func (b *benchEngine) netmap(peer *benchEngine) *wire.NetMap {
	return &wire.NetMap{
		Version: wire.Version,
		Self:    wire.Self{Key: b.eng.PublicKey(), Addresses: []netip.Addr{b.addr}},
		Peers: []wire.Peer{{
			Key:       peer.eng.PublicKey(),
			Addresses: []netip.Addr{peer.addr},
			Endpoints: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), peer.eng.Port())},
		}},
	}
}
