// Package tailnet runs a moat GPU node as a member of an existing
// Tailscale or Headscale tailnet (tailscale.com/tsnet), instead of moat's
// own mesh: the guard listens on the node's tailnet addresses, and who is
// calling comes from the tailnet itself — the local WhoIs of each
// connection's source address (login name, tags, the moat app capability),
// never from a header. WireGuard under tsnet makes that address
// unforgeable, as in moat's mesh.
//
// Policy is either local (a moat policy file, compiled on the node for
// the callers it has seen; the audit spool stays on the node, verifiable
// with `moat-node audit verify`) or a coordinator's that the node is
// enrolled at (Config.Coordinator, enrolled.go: the coordinator maps
// tailnet logins to its people and pushes the node's rules; the audit is
// shipped there). Integrity checks of pinned weights run as on any node.
// A tailnet cannot tell the node when someone last proved a second
// factor, so grants that demand MFA refuse with that reason.
//
// tsnet's log upload to Tailscale's log service is off (quietLogs).
package tailnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"tailscale.com/client/local"
	"tailscale.com/ipn"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/guard"
	"github.com/moatmesh/moat/node/lockdown"
	"github.com/moatmesh/moat/policy"
)

// noMFA is the reason the guard gives for refusing MFA-only grants.
const noMFA = "this node is on a tailnet, which cannot tell it when anyone last proved a second factor"

// Config configures a tailnet node. The zero value of each field means
// what its comment says.
type Config struct {
	// ControlURL is the tailnet's coordination server: a Headscale URL,
	// or "" for Tailscale's own.
	ControlURL string
	// AuthKey joins the tailnet the first time (a Tailscale or Headscale
	// pre-auth key, best tagged, e.g. tag:gpu); later runs use the state
	// in StateDir/tailscale. Default "": the node must have joined before.
	AuthKey wire.Secret
	// AdvertiseTags are the tags the node asks the tailnet for. Default:
	// none (those of a tagged auth key apply).
	AdvertiseTags []string
	// Hostname is the node's name on the tailnet. Required.
	Hostname string
	// StateDir holds the tailnet state (StateDir/tailscale), the audit
	// spool, the audit key and the day's counters. Required.
	StateDir string
	// Models are the models served. Required: at least one.
	Models []node.Model
	// Policy is the moat policy the node enforces (parsed from a local
	// file). Required without Coordinator, refused with it. Models are
	// served only where its "servedBy" tags name one of the node's
	// tailnet tags.
	Policy *policy.Policy
	// Coordinator, when set, enrolls the node at a moat coordinator (its
	// URL, fingerprint and, until the node has joined, enrollment key;
	// the node fills in StateDir, Hostname and Logger). The coordinator
	// then gives the node its rules (for the node's moat tags, from the
	// enrollment key) and the people and tailnet tags its callers may be,
	// at every change, and receives its audit and leases its limits; see
	// enrolled.go. Default nil: standalone, with Policy.
	Coordinator *node.CoordinatorConfig
	// GuardPort is the guard's port on the tailnet addresses. Default 80.
	GuardPort uint16
	// ListenPort is tsnet's UDP port for WireGuard, direct paths and STUN.
	// Default 41641.
	ListenPort uint16
	// Lockdown, when set, applies the nftables lockdown (needs
	// CAP_NET_ADMIN) before the node joins: the host may then reach the
	// control server (CoordinatorURL: ControlURL, or Tailscale's), the
	// DERP relays and STUN servers of the tailnet's DERP map and the
	// current peers' endpoints (from the WireGuard port), following the
	// netmap, and what the Config itself allows; nothing else. The node
	// fills in CoordinatorURL, CoordinatorUIDs (its own uid),
	// WireGuardPort, GuardPort and InferencePorts when empty. Default nil:
	// no lockdown, said loudly in the log.
	Lockdown *lockdown.Config
	// CapName is the tailnet app capability whose values name a caller's
	// groups (see DefaultCapName). Default DefaultCapName.
	CapName string
	// IntegrityInterval and ShutdownTimeout are as node.Config's.
	IntegrityInterval, ShutdownTimeout time.Duration
	// Collectors are more Prometheus collectors for /metrics. Default: none.
	Collectors []prometheus.Collector
	// Logger receives the node's logs; tsnet's own go there at debug
	// level. Default: discard.
	Logger *slog.Logger

	// Store, when set, keeps the tailnet state in memory instead of in
	// StateDir (tests; the node must then be Ephemeral). Default nil.
	Store ipn.StateStore
	// Ephemeral makes the tailnet forget the node when it goes away
	// (tests). Default false.
	Ephemeral bool
}

// Node is a running tailnet node.
type Node struct {
	cfg   Config
	log   *slog.Logger
	ts    *tsnet.Server
	lc    *local.Client
	local *node.Local
	coord *node.Coordinator // nil: standalone
	table *callers

	lock      *lockdown.Lockdown // nil: lockdown off
	stopWatch context.CancelFunc // the lockdown watch
	watchWG   sync.WaitGroup

	mu struct {
		sync.Mutex
		onChange  []func(context.Context)
		endpoints map[tailcfg.NodeID][]netip.AddrPort // the peers' direct endpoints, from the netmap
	}
}

// Start joins the tailnet (bringing the node up), starts the guard and
// applies the node's own identity. Run serves; Close stops everything.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	quietLogs()
	n := &Node{cfg: cfg, log: cfg.Logger}
	if err := n.start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (c *Config) setDefaults() error {
	switch {
	case c.Hostname == "":
		return errors.New("tailnet: no hostname; give --hostname NAME (the node's name on the tailnet)")
	case c.Policy == nil && c.Coordinator == nil:
		return errors.New("tailnet: no policy; give --policy FILE (a moat policy) or --coordinator URL")
	case c.Policy != nil && c.Coordinator != nil:
		return errors.New("tailnet: a node enrolled at a coordinator takes its policy from there; drop --policy")
	case c.StateDir == "":
		return errors.New("tailnet: no state directory")
	}
	if c.GuardPort == 0 {
		c.GuardPort = 80
	}
	if c.ListenPort == 0 {
		c.ListenPort = 41641
	}
	if c.CapName == "" {
		c.CapName = DefaultCapName
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func (n *Node) start(ctx context.Context) error {
	lcfg := node.LocalConfig{StateDir: n.cfg.StateDir, NodeName: n.cfg.Hostname, Models: n.cfg.Models,
		IntegrityInterval: n.cfg.IntegrityInterval, ShutdownTimeout: n.cfg.ShutdownTimeout, NoMFA: noMFA,
		Collectors: n.cfg.Collectors, Logger: n.log}
	if c := n.cfg.Coordinator; c != nil {
		c.StateDir, c.Hostname, c.Logger = n.cfg.StateDir, n.cfg.Hostname, n.log
		var err error
		if n.coord, err = node.JoinCoordinator(ctx, *c); err != nil {
			return fmt.Errorf("tailnet: enroll at the coordinator: %w", err)
		}
		lcfg.Coordinator, lcfg.NodeID = n.coord, string(n.coord.DeviceID())
	}
	var err error
	if n.local, err = node.StartLocal(lcfg); err != nil {
		return err
	}
	n.table = newCallers(n.cfg.Policy, n.cfg.Models, n.local.Guard())
	if err := n.applyLockdown(ctx); err != nil {
		return err
	}
	n.ts = &tsnet.Server{Port: n.cfg.ListenPort,
		Dir: filepath.Join(n.cfg.StateDir, "tailscale"), Store: n.cfg.Store, Ephemeral: n.cfg.Ephemeral,
		Hostname: n.cfg.Hostname, ControlURL: n.cfg.ControlURL, AuthKey: string(n.cfg.AuthKey), AdvertiseTags: n.cfg.AdvertiseTags,
		Logf: n.tsLogf, UserLogf: n.tsLogf,
	}
	st, err := n.ts.Up(ctx)
	if err != nil {
		return fmt.Errorf("tailnet: join %s: %w", controlName(n.cfg.ControlURL), err)
	}
	if n.lc, err = n.ts.LocalClient(); err != nil {
		return err
	}
	if err := n.refreshSelf(ctx); err != nil {
		return err
	}
	n.logServed()
	n.log.Info("on the tailnet", "hostname", n.cfg.Hostname, "addresses", st.TailscaleIPs, "control", controlName(n.cfg.ControlURL))
	return nil
}

// tsLogf sends tsnet's chatter to the debug log.
func (n *Node) tsLogf(format string, args ...any) {
	if n.log.Enabled(context.Background(), slog.LevelDebug) {
		n.log.Debug(fmt.Sprintf(format, args...), "from", "tsnet")
	}
}

// refreshSelf reads the node's own tailnet identity and gives it to the
// table.
func (n *Node) refreshSelf(ctx context.Context) error {
	st, err := n.lc.StatusWithoutPeers(ctx)
	if err != nil {
		return fmt.Errorf("tailnet: status: %w", err)
	}
	if st.Self == nil {
		return errors.New("tailnet: status has no self")
	}
	self := wire.Self{Key: key.PublicFromRaw(st.Self.PublicKey.Raw32()), Addresses: slices.Clone(st.TailscaleIPs),
		Identity: wire.Identity{DeviceID: wire.DeviceID("tailnet:" + string(st.Self.ID)), DeviceName: n.cfg.Hostname}}
	if st.Self.Tags != nil {
		self.Identity.Tags = slices.Sorted(slices.Values(st.Self.Tags.AsSlice()))
	}
	return n.table.setSelf(self)
}

// logServed says which models the policy lets this node serve, and why
// not the others (a node enrolled at a coordinator says so as its maps
// arrive).
func (n *Node) logServed() {
	if n.cfg.Policy == nil {
		n.log.Info("policy, people and audit from the coordinator", "node", n.coord.DeviceID())
		return
	}
	serves, refused, err := n.table.served()
	if err != nil {
		n.log.Error("policy", "err", err)
		return
	}
	if len(refused) > 0 {
		n.log.Error("the policy does not let this node serve some of its models: its tailnet tags are not in their servedBy, or the policy pins other weights; use a tagged auth key or --advertise-tags",
			"refused", refused)
	}
	for _, g := range n.cfg.Policy.Grants {
		if g.MFA > 0 && len(g.Models) > 0 {
			n.log.Warn("a grant demands MFA, which a tailnet cannot prove: its requests are refused on this node", "grant", g.ID())
		}
	}
	n.log.Info("serving", "models", serves)
}

// Guard returns the node's guard.
func (n *Node) Guard() *guard.Guard { return n.local.Guard() }

// Tailnet returns the tsnet server the node runs on.
func (n *Node) Tailnet() *tsnet.Server { return n.ts }

// DeviceID is the node's device ID at its moat coordinator; "" when it
// runs standalone.
func (n *Node) DeviceID() wire.DeviceID {
	if n.coord == nil {
		return ""
	}
	return n.coord.DeviceID()
}

// Run serves the guard on the node's tailnet addresses and follows the
// tailnet's netmap until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	ln, err := n.ts.Listen("tcp", fmt.Sprintf(":%d", n.cfg.GuardPort))
	if err != nil {
		return fmt.Errorf("tailnet: guard cannot listen on port %d: %w", n.cfg.GuardPort, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { n.watch(ctx) })
	if n.coord != nil {
		wg.Go(func() { n.follow(ctx) })
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	n.log.Info("guard listening on the tailnet", "port", n.cfg.GuardPort)
	err = n.Guard().Serve(&whoisListener{Listener: ln, n: n, ctx: ctx})
	if ctx.Err() != nil || errors.Is(err, guard.ErrClosed) {
		return nil
	}
	return err
}

// Close stops the guard (letting requests finish up to ShutdownTimeout),
// leaves the tailnet and closes the spool. The lockdown stays in place
// (fail closed); `moat-node lockdown off` removes it.
func (n *Node) Close() error {
	if n.stopWatch != nil {
		n.stopWatch()
		n.watchWG.Wait()
	}
	var err error
	if n.local != nil {
		err = n.local.Close()
	}
	if n.coord != nil {
		n.coord.Close()
	}
	if n.ts != nil {
		err = errors.Join(err, n.ts.Close())
	}
	return err
}

// controlName names the control server in messages.
func controlName(url string) string {
	if url == "" {
		return "Tailscale"
	}
	return url
}

// whoisListener identifies each connection's caller with the tailnet's
// WhoIs before the guard sees it, so that the guard's netmap holds every
// caller it is asked about.
type whoisListener struct {
	net.Listener
	n   *Node
	ctx context.Context
}

func (l *whoisListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := l.n.identify(l.ctx, c.RemoteAddr().String()); err != nil {
		// The guard refuses a caller it does not know: fail closed.
		l.n.log.Warn("tailnet caller not identified", "addr", c.RemoteAddr(), "err", err)
	}
	return c, nil
}

// identify asks the tailnet who is behind remoteAddr and records it.
func (n *Node) identify(ctx context.Context, remoteAddr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	w, err := n.lc.WhoIs(ctx, remoteAddr)
	if err != nil {
		return fmt.Errorf("whois: %w", err)
	}
	c, err := callerOf(w, n.cfg.CapName)
	if err != nil {
		if w != nil && w.Node != nil {
			n.table.drop(w.Node.Key)
		}
		return err
	}
	return n.table.put(c)
}
