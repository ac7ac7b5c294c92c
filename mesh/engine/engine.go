// Package engine runs a mesh member's WireGuard interface (wireguard-go)
// over one of two backends behind one type: a kernel TUN device, whose
// addresses and routes are set through netlink, or a userspace TCP/IP stack
// (gVisor netstack) that needs no privileges and serves Dial and Listen on
// the mesh addresses inside the process.
//
// An Engine starts with no peers. Reconfig applies a netmap by difference:
// peers whose configuration is unchanged keep their sessions, removed peers
// stop passing traffic at once, and new peers work without a restart.
// Close stops every goroutine the engine started.
package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/mesh/wire"
)

// Backend selects how the engine exchanges packets with the host.
type Backend int

const (
	// Netstack runs a userspace TCP/IP stack in the process. No root needed;
	// only the engine's Dial and Listen reach the mesh.
	Netstack Backend = iota
	// TUN creates a kernel TUN interface; needs CAP_NET_ADMIN. Every
	// program on the host reaches the mesh through it.
	TUN
)

func (b Backend) String() string {
	switch b {
	case Netstack:
		return "netstack"
	case TUN:
		return "tun"
	}
	return fmt.Sprintf("Backend(%d)", int(b))
}

// Config configures an Engine. Only PrivateKey is required.
type Config struct {
	// PrivateKey is this member's WireGuard key. Required.
	PrivateKey key.Private
	// ListenPort is the UDP port WireGuard listens on, on all host
	// addresses. 0 picks a free port; Port reports it.
	ListenPort uint16
	// Backend is Netstack (the zero value) or TUN.
	Backend Backend
	// TUNName names the kernel interface for the TUN backend.
	// Default "moat0".
	TUNName string
	// MTU of the mesh interface. Default 1420, WireGuard's usual value
	// for a 1500-byte underlay (it adds at most 80 bytes); lower it to 1280
	// for underlays with smaller MTUs such as some VPNs and PPPoE links.
	MTU int
	// Routes are the prefixes the TUN backend routes into the mesh.
	// Default: wire.IPv4Range and wire.IPv6Range.
	Routes []netip.Prefix
	// Logger receives the engine's and wireguard-go's logs. Default: none.
	Logger *slog.Logger
}

// DefaultMTU is the mesh MTU when Config.MTU is 0.
const DefaultMTU = 1420

// Engine is one mesh member's WireGuard interface.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	backend backend
	dev     *device.Device
	bind    *pathBind
	recv    *recvTimes // when each peer's packets last arrived (recvtime.go)

	mu struct {
		sync.Mutex
		closed bool
		addrs  []netip.Addr
		peers  map[key.Public]peerConfig
		resync bool // the last peer update failed part-way
		netmap *wire.NetMap
		// renewed holds when rehandshake last renewed each peer's
		// session, for renewals within rehandshakeGap.
		renewed map[key.Public]time.Time
	}
}

// backend is what the two kinds of interface provide beyond tun.Device.
type backend interface {
	tun.Device
	// setAddrs changes the interface's mesh addresses from old to new.
	setAddrs(old, new []netip.Addr) error
	// dial connects to a mesh address.
	dial(ctx context.Context, network string, dst netip.AddrPort) (net.Conn, error)
	// listen listens on one local address (unspecified = all of that family).
	listen(network string, local netip.AddrPort) (net.Listener, error)
}

// ErrClosed is returned by an Engine's methods after Close.
var ErrClosed = errors.New("engine: closed")

// New creates an engine with no peers and no addresses; apply a netmap with
// Reconfig to join the mesh.
func New(cfg Config) (*Engine, error) {
	if cfg.PrivateKey.IsZero() {
		return nil, errors.New("engine: Config.PrivateKey is required")
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < 1280 || cfg.MTU > 65000 {
		return nil, fmt.Errorf("engine: MTU %d out of range 1280..65000", cfg.MTU)
	}
	if cfg.TUNName == "" {
		cfg.TUNName = "moat0"
	}
	if cfg.Routes == nil {
		cfg.Routes = []netip.Prefix{wire.IPv4Range, wire.IPv6Range}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, log: log.With("backend", cfg.Backend.String()), recv: newRecvTimes()}
	e.mu.peers = map[key.Public]peerConfig{}

	var err error
	switch cfg.Backend {
	case Netstack:
		e.backend, err = newNetstack(cfg.MTU)
	case TUN:
		e.backend, err = newTUN(cfg.TUNName, cfg.MTU, cfg.Routes)
	default:
		err = fmt.Errorf("unknown backend %v", cfg.Backend)
	}
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	e.bind = newPathBind(newCappedBind(conn.NewDefaultBind()), cfg.PrivateKey, e.log)
	e.bind.renew = e.renewSession
	e.dev = device.NewDevice(recvDevice{e.backend, e.recv}, e.bind, wgLogger(e.log))
	// Every peer is configured with its key as its endpoint (Reconfig),
	// and the bind picks the path for each send; wireguard-go must not
	// replace that endpoint with a packet's source address.
	e.dev.DisableSomeRoamingForBrokenMobileSemantics()
	setup := fmt.Sprintf("private_key=%s\nlisten_port=%d\n", cfg.PrivateKey.Hex(), cfg.ListenPort)
	if err := e.dev.IpcSet(setup); err != nil {
		e.dev.Close()
		return nil, fmt.Errorf("engine: configure device: %w", err)
	}
	if err := e.dev.Up(); err != nil {
		e.dev.Close()
		return nil, fmt.Errorf("engine: bring device up: %w", err)
	}
	return e, nil
}

// wgLogger sends wireguard-go's verbose lines to Debug and its errors to
// Warn (they are mostly about single packets).
func wgLogger(l *slog.Logger) *device.Logger {
	return &device.Logger{
		Verbosef: func(format string, args ...any) { l.Debug(fmt.Sprintf(format, args...)) },
		Errorf:   func(format string, args ...any) { l.Warn(fmt.Sprintf(format, args...)) },
	}
}

// PublicKey returns the engine's WireGuard public key.
func (e *Engine) PublicKey() key.Public { return e.cfg.PrivateKey.Public() }

// SetRelay makes the engine reach peers without a direct path through
// the relay at url ("https://HOST[:PORT]/derp"), verifying its
// certificate with tlsConf (nil: the system roots) and going through the
// HTTP proxy when proxy is set. An empty url disconnects. Setting what is
// set already changes nothing.
func (e *Engine) SetRelay(url string, tlsConf *tls.Config, proxy *url.URL) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	return e.bind.setRelay(relay.ClientConfig{URL: url, PrivateKey: e.cfg.PrivateKey, TLS: tlsConf, Proxy: proxy, Logger: e.log})
}

// SetSTUN makes the engine ask server (a STUN server, such as the
// coordinator's on relay.DefaultSTUNPort) for the public address of its
// WireGuard socket while traffic flows; PublicEndpoint reports it. An
// invalid server stops asking.
func (e *Engine) SetSTUN(server netip.AddrPort) { e.bind.setSTUN(server) }

// PublicEndpoint is the address the STUN server last saw the WireGuard
// socket at (behind a NAT: the NAT's); invalid before the first answer.
func (e *Engine) PublicEndpoint() netip.AddrPort { return e.bind.publicEndpoint() }

// OnPublicEndpoint makes the engine call f, on its receive path (so f
// must not block), each time STUN sees the WireGuard socket at a new
// public address: a member reports it at once rather than at its next
// report. A later call replaces f; nil stops the calls.
func (e *Engine) OnPublicEndpoint(f func(netip.AddrPort)) {
	if f == nil {
		e.bind.onPublic.Store(nil)
		return
	}
	e.bind.onPublic.Store(&f)
}

// Backend returns the backend the engine runs on.
func (e *Engine) Backend() Backend { return e.cfg.Backend }

// Port returns the UDP port WireGuard listens on.
func (e *Engine) Port() uint16 {
	st, err := e.status()
	if err != nil {
		return 0
	}
	return st.port
}

// Addresses returns the mesh addresses currently configured.
func (e *Engine) Addresses() []netip.Addr {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]netip.Addr(nil), e.mu.addrs...)
}

// NetMap returns the netmap applied last, or nil. The caller must not
// modify it.
func (e *Engine) NetMap() *wire.NetMap {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.mu.netmap
}

// Dial connects to addr ("100.64.0.2:8080", "[fd7a:…]:80") over the mesh.
// network is "tcp", "tcp4", "tcp6", "udp", "udp4" or "udp6". Only IP
// literals are accepted: mesh members have no DNS of their own yet.
func (e *Engine) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("engine: dial %s: want IP:port: %w", addr, err)
	}
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	dst := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	stale := time.AfterFunc(staleSessionAfter, func() { e.rehandshake(dst.Addr()) })
	defer stale.Stop()
	return e.backend.dial(ctx, network, dst)
}

// staleSessionAfter is how long a connection attempt may go unanswered
// before the engine suspects the peer's WireGuard session. A peer that
// restarted, or that dropped this device and took it back (a revocation,
// a new sign-in), has forgotten the session this engine still sends with:
// its packets vanish, and WireGuard alone starts a new handshake only
// after 15 s without an answer.
const staleSessionAfter = 500 * time.Millisecond

// rehandshake retires the session with the peer that holds addr and
// starts a new handshake, so that the next retransmission arrives. A
// healthy peer loses nothing but one handshake.
//
// Several connections unanswered at once (a router's workers, a browser's
// requests) renew once per rehandshakeGap: two initiations a few milliseconds
// apart can cross so that the peer keeps one and this side the other,
// and neither has a session until WireGuard's next retry (seen under
// load in internal/e2e's rotation test).
func (e *Engine) rehandshake(addr netip.Addr) {
	e.mu.Lock()
	pk, found := e.peerForLocked(addr)
	closed := e.mu.closed
	fresh := found && !closed && e.renewDueLocked(pk, time.Now())
	e.mu.Unlock()
	if !fresh {
		return
	}
	e.log.Debug("connection unanswered; new handshake", "peer", pk.Short(), "addr", addr)
	e.renewSession(pk)
}

// rehandshakeGap is the least time between two renewals of one peer's session
// by rehandshake: more than a handshake's round trip on a loaded machine,
// less than WireGuard's own 5 s retry.
const rehandshakeGap = 2 * staleSessionAfter

// renewDueLocked reports whether peer k's session may be renewed at now,
// and if so notes it; notes older than rehandshakeGap are dropped.
func (e *Engine) renewDueLocked(k key.Public, now time.Time) bool {
	if last, ok := e.mu.renewed[k]; ok && now.Sub(last) < rehandshakeGap {
		return false
	}
	for pk, t := range e.mu.renewed {
		if now.Sub(t) >= rehandshakeGap {
			delete(e.mu.renewed, pk)
		}
	}
	if e.mu.renewed == nil {
		e.mu.renewed = map[key.Public]time.Time{}
	}
	e.mu.renewed[k] = now
	return true
}

// renewSession retires the session with peer k, if any, and starts a new
// handshake at once (WireGuard otherwise waits 5 s between initiations).
func (e *Engine) renewSession(k key.Public) {
	if p := e.dev.LookupPeer(device.NoisePublicKey(k.Raw())); p != nil {
		p.ExpireCurrentKeypairs()
		p.SendKeepalive() // queued behind a fresh handshake
	}
}

// peerForLocked returns the peer whose allowed IPs hold addr.
func (e *Engine) peerForLocked(addr netip.Addr) (key.Public, bool) {
	for k, pc := range e.mu.peers {
		for _, p := range pc.allowed {
			if p.Contains(addr) {
				return k, true
			}
		}
	}
	return key.Public{}, false
}

// Listen listens for TCP connections from the mesh. An empty host (":8080")
// listens on every mesh address the engine has now; a host must be one of
// them. network is "tcp", "tcp4" or "tcp6".
func (e *Engine) Listen(network, addr string) (net.Listener, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	locals, err := e.listenAddrs(network, addr)
	if err != nil {
		return nil, fmt.Errorf("engine: listen %s: %w", addr, err)
	}
	var ls []net.Listener
	for _, l := range locals {
		ln, err := e.backend.listen(network, l)
		if err != nil {
			for _, o := range ls {
				o.Close()
			}
			return nil, fmt.Errorf("engine: listen %s: %w", l, err)
		}
		ls = append(ls, ln)
	}
	if len(ls) == 1 {
		return ls[0], nil
	}
	return newMultiListener(ls), nil
}

func (e *Engine) checkOpen() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.closed {
		return ErrClosed
	}
	return nil
}

// Close removes every peer, shuts the interface down and waits for the
// engine's goroutines to stop. Connections made with Dial or Listen fail
// from then on.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.mu.closed {
		e.mu.Unlock()
		return nil
	}
	e.mu.closed = true
	e.mu.Unlock()
	e.dev.Close() // closes the backend and the bind, and waits for its routines
	<-e.dev.Wait()
	e.bind.closeRelay()
	if w, ok := e.backend.(interface{ wait() }); ok {
		w.wait()
	}
	return nil
}
