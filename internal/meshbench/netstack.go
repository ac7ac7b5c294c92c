package meshbench

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// NetstackThroughput runs two engines on the netstack backend in this
// process, joined over loopback UDP, and measures TCP bulk throughput from
// one to the other for d after a warm-up. It returns bits per second.
func NetstackThroughput(ctx context.Context, d time.Duration) (float64, error) {
	a, err := newEngine(1)
	if err != nil {
		return 0, err
	}
	defer a.eng.Close()
	b, err := newEngine(2)
	if err != nil {
		return 0, err
	}
	defer b.eng.Close()
	if err := a.eng.Reconfig(a.netmap(b)); err != nil {
		return 0, err
	}
	if err := b.eng.Reconfig(b.netmap(a)); err != nil {
		return 0, err
	}
	ln, err := b.eng.Listen("tcp", ":5201")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	go Sink(ln)
	dst := netip.AddrPortFrom(b.addr, 5201).String()
	run := func(d time.Duration) (float64, error) {
		c, err := a.eng.Dial(ctx, "tcp", dst)
		if err != nil {
			return 0, fmt.Errorf("dial %s: %w", dst, err)
		}
		defer c.Close()
		return Send(c, d)
	}
	if _, err := run(d / 4); err != nil { // warm-up: handshake, buffers
		return 0, err
	}
	return run(d)
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
