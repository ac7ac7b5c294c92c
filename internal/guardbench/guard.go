package guardbench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/router"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/guard"
)

// Guard is a guard under test and the client that reaches it.
type Guard struct {
	URL    string
	Client *http.Client
	close  []func()

	// Over the mesh only: the caller's engine and the node it reaches,
	// for a router in front (StartRouter).
	caller *engine.Engine
	node   wire.Peer
}

// Close stops the guard, its spool and engines.
func (g *Guard) Close() {
	for i := len(g.close) - 1; i >= 0; i-- {
		g.close[i]()
	}
}

// rules is the benchmark's policy: one grant with limits high enough not
// to bite, a max_tokens cap, prompt hashes in the audit records, and the
// screening a careful organisation would turn on (every category), or
// none when screen is false.
func rules(screen bool) *wire.NodeRules {
	lim := wire.Limits{RPM: 1 << 30, TPM: 1 << 40, Concurrency: 1024, TokensPerDay: 1 << 60, MaxTokens: 4096}
	var gr wire.GuardRules
	if screen {
		gr = wire.GuardRules{Injection: "flag", Redact: []string{"secrets", "pii"}}
	}
	return &wire.NodeRules{Grants: []wire.GrantRule{{
		ID: "grants[0]", MFA: wire.Duration(12 * time.Hour), Limits: lim,
		Audit: wire.AuditRules{Prompts: "hash"}, Guard: gr,
	}}}
}

func identity() wire.Identity {
	return wire.Identity{UserID: "u1", Login: "alice@example.com", DeviceID: "d1", LastMFA: time.Now(), Expiry: time.Now().Add(24 * time.Hour)}
}

// newGuard starts a guard in front of upstream with the audit spool in
// dir.
func newGuard(upstream, dir string) (*guard.Guard, func(), error) {
	spool, err := audit.Open(dir, audit.Options{})
	if err != nil {
		return nil, nil, err
	}
	g, err := guard.New(guard.Config{Models: map[string]guard.Upstream{"llama": {URL: upstream, Kind: guard.KindOpenAI}},
		NodeName: "bench", Audit: spool, AuditKey: []byte("bench-key"),
		MaxConnsPerPeer: 1024}) // the bench opens more than a person would
	if err != nil {
		spool.Close()
		return nil, nil, err
	}
	return g, func() { g.Close(); spool.Close() }, nil
}

// StartLoopback runs the guard on 127.0.0.1 with a netmap that gives the
// caller the address 127.0.0.1: the guard's own overhead, without the
// mesh; with every screening category on, or none.
func StartLoopback(upstream, dir string, screen bool) (*Guard, error) {
	g, stop, err := newGuard(upstream, dir)
	if err != nil {
		return nil, err
	}
	priv, _ := key.NewPrivate()
	nm := &wire.NetMap{Version: wire.Version, Seq: 1, Rules: rules(screen), Peers: []wire.Peer{{Key: priv.Public(),
		Addresses: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, Identity: identity(), Access: []wire.ModelAccess{{Model: "llama"}}}}}
	if err := g.SetNetMap(nm); err != nil {
		stop()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		stop()
		return nil, err
	}
	go g.Serve(ln)
	return &Guard{URL: "http://" + ln.Addr().String(), Client: newClient(nil), close: []func(){stop}}, nil
}

// StartMesh runs the guard behind a netstack WireGuard engine and a caller
// engine that dials it, both in this process over loopback UDP.
func StartMesh(upstream, dir string) (*Guard, error) {
	out := &Guard{}
	node, err := newEngine(out)
	if err != nil {
		return nil, err
	}
	caller, err := newEngine(out)
	if err != nil {
		out.Close()
		return nil, err
	}
	nodeAddr, callerAddr := netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("100.64.0.2")
	peer := func(e *engine.Engine, a netip.Addr, id wire.Identity, access ...wire.ModelAccess) wire.Peer {
		return wire.Peer{Key: e.PublicKey(), Addresses: []netip.Addr{a}, Identity: id, Access: access,
			Endpoints: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), e.Port())}}
	}
	nodeNM := &wire.NetMap{Version: wire.Version, Seq: 1, Rules: rules(true), Peers: []wire.Peer{peer(caller, callerAddr, identity(), wire.ModelAccess{Model: "llama"})},
		Self: wire.Self{Key: node.PublicKey(), Addresses: []netip.Addr{nodeAddr}}}
	callerNM := &wire.NetMap{Version: wire.Version, Seq: 1, Peers: []wire.Peer{peer(node, nodeAddr, wire.Identity{DeviceID: "node"})},
		Self: wire.Self{Key: caller.PublicKey(), Addresses: []netip.Addr{callerAddr}, Identity: identity()}}
	g, stop, err := newGuard(upstream, dir)
	if err == nil {
		out.close = append(out.close, stop)
		err = node.Reconfig(nodeNM)
	}
	if err == nil {
		err = caller.Reconfig(callerNM)
	}
	if err == nil {
		err = g.SetNetMap(nodeNM)
	}
	var ln net.Listener
	if err == nil {
		ln, err = node.Listen("tcp", ":80")
	}
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("guard on the mesh: %w", err)
	}
	go g.Serve(ln)
	out.URL = "http://" + netip.AddrPortFrom(nodeAddr, 80).String()
	out.Client = newClient(caller.Dial)
	out.caller, out.node = caller, callerNM.Peers[0]
	return out, nil
}

func newEngine(g *Guard) (*engine.Engine, error) {
	priv, err := key.NewPrivate()
	if err != nil {
		return nil, err
	}
	e, err := engine.New(engine.Config{PrivateKey: priv})
	if err != nil {
		return nil, err
	}
	g.close = append(g.close, func() { e.Close() })
	return e, nil
}

// newClient is a keep-alive client for up to 128 parallel requests.
func newClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy: nil, DialContext: dial, MaxIdleConns: 256, MaxIdleConnsPerHost: 128, DisableCompression: true,
	}}
}

// DirectClient is the client for the direct and nginx paths.
func DirectClient() *http.Client { return newClient(nil) }

// StartRouter runs the employee's local endpoint (mesh/router, as `moat
// up` serves it on 127.0.0.1) in front of mesh's caller engine, routing
// "llama" to mesh's guard: the whole path a person's program takes.
func StartRouter(mesh *Guard) (*Guard, error) {
	if mesh.caller == nil {
		return nil, fmt.Errorf("router: the guard is not on a mesh")
	}
	node := mesh.node
	node.Models = []string{"llama"}
	rt, err := router.New(router.Config{Dialer: mesh.caller})
	if err != nil {
		return nil, err
	}
	rt.SetNetMap(&wire.NetMap{Version: wire.Version, Seq: 1, Peers: []wire.Peer{node},
		Self: wire.Self{Key: mesh.caller.PublicKey(), Identity: identity()}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		rt.Close()
		return nil, err
	}
	srv := &http.Server{Handler: rt, ConnContext: rt.ConnContext, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &Guard{URL: "http://" + ln.Addr().String(), Client: newClient(nil),
		close: []func(){func() { srv.Close(); rt.Close() }}}, nil
}
