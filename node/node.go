package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/member"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/guard"
	"github.com/moatmesh/moat/node/lockdown"
	"github.com/moatmesh/moat/node/mcpguard"
	"github.com/moatmesh/moat/node/mcpstdio"
)

// Model is one model the node serves.
type Model struct {
	// Name is the model name callers use. Required.
	Name string
	// Upstream is the local inference server, e.g. http://127.0.0.1:11434,
	// with its API kind and optional upstream model name.
	Upstream guard.Upstream
	// SHA256 pins the weights file, if File is set: 64 hex digits,
	// optionally prefixed "sha256:". Default: no pin.
	SHA256 string
	// File is the weights file to hash. Default: none. With both SHA256
	// and File set, the model is served only while the file's sha256
	// matches the pin: it is checked at start (the model answers 503
	// until the first check passes) and every Config.IntegrityInterval.
	// It is also the path checked for encryption at rest when the policy
	// sets "encryptedAtRest" for the model: without it such a model is
	// not served.
	File string
}

// Config configures a node. The zero value of each field means what its
// comment says.
type Config struct {
	// Coordinator is the coordinator URL. Required on first join; later
	// runs use the one in the state.
	Coordinator string
	// Fingerprint pins a self-signed coordinator certificate. Default:
	// system roots.
	Fingerprint string
	// EnrollKey ("moat_ek_…") is needed only until the node has joined.
	EnrollKey wire.Secret
	// JoinOnce uses EnrollKey only while the node has not joined (its
	// state holds no credential), as `moat-node run --key` does: the key
	// may stay in a service's settings, and a restart neither spends nor
	// needs it. Default false (`moat-node join`): a key always enrolls,
	// again when the node had joined before.
	JoinOnce bool
	// StateDir holds the node's key, credential, audit spool and the
	// day's token counters (limits.json).
	// Default "./moat-node".
	StateDir string
	// Hostname is shown to admins. Default: os.Hostname().
	Hostname string
	// Models are the models served. At least one model or MCP server.
	Models []Model
	// MCP maps the MCP servers the node serves to their local Streamable
	// HTTP URLs on loopback (`--mcp NAME=http://127.0.0.1:PORT/mcp`),
	// served to the mesh by node/mcpguard at /mcp/NAME and advertised as
	// ModelAd{API: "mcp"}. Default: none.
	MCP map[string]string
	// MCPStdio are the stdio MCP servers the node runs and serves to the
	// mesh likewise (`--mcp NAME=stdio:/path,ARG…`), one sandboxed process
	// per session, each server in its own cgroup below the node's (see
	// node/mcpstdio). Default: none.
	MCPStdio []mcpstdio.Command
	// Backend is the engine backend. Default: TUN when the process holds
	// CAP_NET_ADMIN in its effective set (root, or the installed unit's
	// moat-node user), else netstack.
	Backend *engine.Backend
	// ListenPort is the WireGuard UDP port. Default 41641.
	ListenPort uint16
	// GuardPort is the guard's port on the mesh addresses. Default 80.
	GuardPort uint16
	// Endpoints are the underlay addresses peers should use. Default: the
	// host's non-loopback addresses with ListenPort.
	Endpoints []netip.AddrPort
	// ExtraEndpoints are advertised before Endpoints (or the interface
	// addresses): an elastic IP or a port forward that reaches the
	// WireGuard port from outside (`--endpoint`). Default: none.
	ExtraEndpoints []netip.AddrPort
	// Lockdown, when set, applies the nftables lockdown (needs
	// CAP_NET_ADMIN) before the node joins the mesh; the node refuses to
	// start if it cannot, watches it while it runs (restoring it at once
	// when it is lost; every model answers 503 while it is not in force)
	// and reports its events to the coordinator. Default nil: no lockdown,
	// said loudly in the log and the node status, so that in-process
	// tests never firewall the machine they run on; the command line
	// defaults to host scope. The node fills in what it knows when the
	// Config leaves it empty: CoordinatorURL (the coordinator it joined),
	// CoordinatorUIDs (its own uid, and root's for install.sh's
	// upgrades), InferencePorts (its models' upstream ports), WireGuardPort
	// and GuardPort (ListenPort and GuardPort above).
	Lockdown *lockdown.Config
	// Logger receives the node's logs. Default: discard.
	Logger *slog.Logger
	// IntegrityInterval is how often the weights files of models with
	// both SHA256 and File are hashed again after the check at start. A
	// mismatch or an unreadable file stops the model (503 with the
	// reason), logs an error, appends an audit record and is reported to
	// the coordinator in the node status; a later match serves it again.
	// Each check reads the whole files, so very large weights on slow
	// disks may want a longer interval. Default (0)
	// DefaultIntegrityInterval, 10 minutes.
	IntegrityInterval time.Duration
	// AuditRetention is how long the audit spool keeps a record already
	// delivered to the coordinator when its grant sets no
	// audit.retention; every hour older delivered records are deleted
	// from the spool's start under a checkpoint (node/audit.Retain), so
	// `moat-node audit verify` still passes. A record not yet delivered
	// is never deleted. Default (0): kept unless the grant's retention
	// says otherwise.
	AuditRetention time.Duration
	// StatusInterval is how often the node sends its status (integrity,
	// lockdown and its drop counters) to the coordinator when nothing
	// else made it report. Default (0) DefaultStatusInterval, 5 minutes.
	StatusInterval time.Duration
	// ShutdownTimeout is how long Close lets the guard's requests in
	// flight (streams included) finish before it cuts them. Default (0)
	// DefaultShutdownTimeout, 30 seconds; negative: cut them at once.
	ShutdownTimeout time.Duration
	// Collectors are more Prometheus collectors the guard's metrics
	// serve, such as the build info. Default: none.
	Collectors []prometheus.Collector
}

// DefaultShutdownTimeout is how long Close lets requests in flight
// finish when Config.ShutdownTimeout is 0.
const DefaultShutdownTimeout = 30 * time.Second

// Node is a running GPU node: a mesh member with the guard, the
// lockdown, the audit spool and the integrity checks on top.
type Node struct {
	cfg    Config
	url    string // the coordinator's
	log    *slog.Logger
	st     *state
	member *member.Member
	guard  *guard.Guard
	mcp    *mcpguard.Guard // nil without Config.MCP and MCPStdio
	stdio  []*stdioServer  // Config.MCPStdio's, running
	spool  *audit.Spool
	ship   *audit.Shipper
	lock   *lockdown.Lockdown // nil: lockdown off
	stops  *stops             // why each model is stopped, by part of the node
	kick   chan struct{}      // asks reportStatus to report now

	stopWatch context.CancelFunc // the lockdown watch
	watchWG   sync.WaitGroup
	holder    io.Closer // the holder socket while the watch runs

	integ         *integrity // nil: no pinned weights files
	atRest        *atRest    // where the node's data sits; set by start
	retention     *spoolRetention
	stopIntegrity context.CancelFunc
	integWG       sync.WaitGroup

	stopRenew context.CancelFunc // renewing the credential (credential.go)
	renewWG   sync.WaitGroup

	advertiseMu sync.Mutex // one advertisement at a time: the newest status wins

	mu struct {
		sync.Mutex
		status   error // the coordinator connection; nil: connected
		guardErr error // why the guard does not listen; nil: it does, or not tried yet
		serving  bool  // the guard has listened on the mesh at least once
		events   []wire.LockdownEvent
	}
}

// Start joins the mesh (enrolling on first run), starts the engine, the
// guard, the audit spool and its shipper, and the lockdown if configured.
// Run keeps it in step with the coordinator; Close stops everything.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, kick: make(chan struct{}, 1), retention: &spoolRetention{def: cfg.AuditRetention}}
	if err := n.start(ctx); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (c *Config) setDefaults() error {
	if len(c.Models) == 0 && len(c.MCP) == 0 && len(c.MCPStdio) == 0 {
		return errors.New("node: no models configured; give at least one --model NAME=URL or --mcp NAME=URL")
	}
	if c.StateDir == "" {
		c.StateDir = "./moat-node"
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}
	if c.ListenPort == 0 {
		c.ListenPort = 41641
	}
	if c.GuardPort == 0 {
		c.GuardPort = 80
	}
	if c.Backend == nil {
		b := engine.Netstack
		if hasNetAdmin() {
			b = engine.TUN
		}
		c.Backend = &b
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.IntegrityInterval <= 0 {
		c.IntegrityInterval = DefaultIntegrityInterval
	}
	return checkPins(c.Models)
}

// checkPins refuses a model whose sha256 pin is not 64 hex digits.
func checkPins(models []Model) error {
	for _, m := range models {
		if h := normalizeSHA256(m.SHA256); m.SHA256 != "" && (len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "") {
			return fmt.Errorf("node: model %s: sha256 %q is not 64 hex digits; give the weights file's sha256 as printed by sha256sum", m.Name, m.SHA256)
		}
	}
	return nil
}

func (n *Node) start(ctx context.Context) error {
	var err error
	if n.st, err = loadState(n.cfg.StateDir); err != nil {
		return err
	}
	n.checkMCP()
	if err := n.startStdio(); err != nil {
		return err
	}
	ctl, err := n.join(ctx)
	if err != nil {
		return err
	}
	if err := n.applyLockdown(ctx); err != nil {
		return err
	}
	n.member, err = member.New(member.Config{PrivateKey: n.st.key, Control: ctl, ListenPort: n.cfg.ListenPort,
		Backend: *n.cfg.Backend, Logger: n.log, OnStatus: n.setStatus})
	if err != nil {
		return err
	}
	// Behind a NAT, peers need the address STUN saw at once (to punch
	// through it), not at the next status report.
	n.member.Engine().OnPublicEndpoint(func(netip.AddrPort) { n.kickStatus() })
	if n.spool, err = audit.Open(filepath.Join(n.cfg.StateDir, "audit"), audit.Options{}); err != nil {
		return err
	}
	if err := n.startGuard(ctl); err != nil {
		return err
	}
	// Before the guard: a model the new rules want encrypted is stopped
	// before the guard serves under them.
	n.atRest = newAtRest(n.cfg.StateDir, filepath.Join(n.cfg.StateDir, "audit"), n.cfg.Models, n.stops.from(stopAtRest), n.spool, n.log, n.cfg.Hostname, string(n.st.DeviceID))
	n.member.AddSink(n.atRest)
	n.member.AddSink(n.retention)
	n.member.AddSink(n.guard)
	if n.mcp != nil {
		n.member.AddSink(n.mcp)
	}
	if n.lock != nil {
		n.member.AddSink(lockdownSink{n.lock})
		if len(n.stdio) > 0 {
			n.member.AddSink(mcpEgressSink{n})
		}
	}
	n.startIntegrity()
	n.startRenew(ctl)
	if err := n.registerMetrics(); err != nil {
		return err
	}
	n.startLockdownWatch()
	return nil
}

// join enrolls on first run and returns the control client with the
// node's credential.
func (n *Node) join(ctx context.Context) (*control.Client, error) {
	req := wire.EnrollRequest{AuthKey: n.cfg.EnrollKey, Hostname: n.cfg.Hostname, Endpoints: n.endpoints(), Models: n.ads()}
	if n.cfg.JoinOnce && n.st.Credential != "" && req.AuthKey != "" {
		n.log.Info("this node has joined before: the enrollment key is not used (it may be removed from the settings)")
		req.AuthKey = ""
	}
	ctl, url, err := joinAt(ctx, n.st, n.cfg.StateDir, n.cfg.Coordinator, n.cfg.Fingerprint, req, n.log)
	n.url = url
	return ctl, err
}

// joinAt returns the control client of the coordinator at url (default:
// the one in st) with st's credential, first enrolling with req (its Key
// is st's) when req carries an enrollment key or st has no credential,
// and then saving st in dir. It also returns the coordinator's URL.
func joinAt(ctx context.Context, st *state, dir, url, fingerprint string, req wire.EnrollRequest, log *slog.Logger) (*control.Client, string, error) {
	if url == "" {
		url = st.Coordinator
	}
	ctl, err := control.New(control.Config{URL: url, Fingerprint: fingerprint, Credential: st.Credential})
	if err != nil {
		return nil, url, err
	}
	if st.Credential != "" && req.AuthKey == "" {
		return ctl, url, nil
	}
	if req.AuthKey == "" {
		return nil, url, errors.New("node: not joined yet; run `moat-node join --key moat_ek_…` with an enrollment key from an admin")
	}
	req.Key = st.key.Public()
	res, err := ctl.Enroll(ctx, req)
	if err != nil {
		return nil, url, fmt.Errorf("join: %w", err)
	}
	st.Credential, st.DeviceID, st.Coordinator = res.Credential, res.DeviceID, url
	st.CredentialIssued, st.CredentialExpiry = res.CredentialIssued, res.CredentialExpiry
	log.Info("joined the mesh", "node", res.DeviceID, "tags", res.Tags, "addresses", res.Addresses)
	return ctl.WithCredential(res.Credential), url, st.save(dir)
}

func (n *Node) ads() []wire.ModelAd {
	var ads []wire.ModelAd
	for _, m := range n.cfg.Models {
		ads = append(ads, wire.ModelAd{Name: m.Name, SHA256: m.SHA256, API: m.Upstream.Kind})
	}
	for _, name := range n.mcpNames() {
		ads = append(ads, wire.ModelAd{Name: name, API: wire.APIMCP})
	}
	return ads
}

func (n *Node) startGuard(ctl *control.Client) error {
	models := map[string]guard.Upstream{}
	for _, m := range n.cfg.Models {
		models[m.Name] = m.Upstream
	}
	key, err := loadAuditKey(n.cfg.StateDir)
	if err != nil {
		return err
	}
	if err := n.startMCP(key); err != nil {
		return err
	}
	gcfg := guard.Config{Models: models, NodeName: n.cfg.Hostname, NodeID: string(n.st.DeviceID), Logger: n.log, Audit: n.spool, AuditKey: key,
		Counters: counterFile(filepath.Join(n.cfg.StateDir, "limits.json")), Leases: ctl}
	if n.mcp != nil {
		gcfg.MCP = n.mcp
	}
	gcfg.Collectors = append(gcfg.Collectors, n.cfg.Collectors...)
	if n.lock != nil {
		gcfg.Collectors = append(gcfg.Collectors, n.lock.Collector())
	}
	if n.guard, err = guard.New(gcfg); err != nil {
		return err
	}
	n.stops = newStops(n.guard)
	checkUpstreams(n.cfg.Models, n.stops, n.log)
	n.ship, err = newShipper(ctl, n.cfg.StateDir, n.spool, n.log, n.retention.keep, n.retentionEvent)
	return err
}

// newShipper ships the spool in stateDir to the coordinator of ctl.
// retention and onRetain are as audit.ShipperConfig's (nil: none).
func newShipper(ctl *control.Client, stateDir string, spool *audit.Spool, log *slog.Logger, retention audit.RetentionFunc, onRetain func(audit.Checkpoint)) (*audit.Shipper, error) {
	return audit.NewShipper(audit.ShipperConfig{
		Dir: filepath.Join(stateDir, "audit"), URL: ctl.URL("/api/v1/audit"), TokenFunc: func() string { return string(ctl.Credential()) },
		Client: ctl.HTTPClient(), Logger: log,
		Spool: spool, Retention: retention, OnRetain: onRetain,
	})
}

// checkUpstreams stops every model whose inference server listens beyond
// loopback: it must be reachable only through the guard. A server that is
// not listening yet is only logged (it may start after the node).
func checkUpstreams(models []Model, st *stops, log *slog.Logger) {
	for _, m := range models {
		err := lockdown.CheckLoopbackOnly(m.Upstream.URL)
		switch {
		case errors.Is(err, lockdown.ErrNotListening):
			log.Warn("model server not listening yet", "model", m.Name, "url", m.Upstream.URL)
		case err != nil:
			log.Error("model server reachable beyond loopback; not serving it", "model", m.Name, "err", err)
			st.set(stopUpstream, m.Name, err.Error())
		}
	}
}

// loadAuditKey is the node's key for prompt hashes in stateDir, made
// once and kept.
func loadAuditKey(stateDir string) ([]byte, error) {
	path := filepath.Join(stateDir, "audit.key")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		b = make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		return b, member.WriteFile(path, b)
	}
	return b, err
}

// Engine returns the node's WireGuard engine.
func (n *Node) Engine() *engine.Engine { return n.member.Engine() }

// Member returns the node's mesh member.
func (n *Node) Member() *member.Member { return n.member }

// DeviceID returns the node's ID at the coordinator.
func (n *Node) DeviceID() wire.DeviceID { return n.st.DeviceID }

// Close stops the lockdown watch, the integrity checker, the guard, the
// shipper, the mesh member (its netmap stream and engine) and the spool.
// The lockdown stays in place (fail closed: the model server stays
// unreachable while the node is down); `moat-node lockdown off` removes
// it.
func (n *Node) Close() error {
	n.drainGuard()
	if n.stopWatch != nil {
		n.stopWatch()
	}
	if n.holder != nil {
		n.holder.Close()
	}
	n.watchWG.Wait()
	if n.stopIntegrity != nil {
		n.stopIntegrity()
		n.integWG.Wait()
	}
	if n.stopRenew != nil {
		n.stopRenew()
		n.renewWG.Wait()
	}
	if n.ship != nil {
		n.ship.Close()
	}
	if n.member != nil {
		n.member.Close()
	}
	n.closeMCP()
	if n.spool != nil {
		return n.spool.Close()
	}
	return nil
}

// drainGuard stops the guard accepting requests and lets those in flight
// finish, up to Config.ShutdownTimeout; what is left then is cut.
func (n *Node) drainGuard() {
	if n.guard != nil {
		drain(n.guard, n.cfg.ShutdownTimeout, n.log)
	}
}

// drain stops g accepting requests and lets those in flight finish, up
// to d (0: DefaultShutdownTimeout; negative: none); what is left is cut.
func drain(g *guard.Guard, d time.Duration, log *slog.Logger) {
	if d == 0 {
		d = DefaultShutdownTimeout
	}
	if d > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		if g.Shutdown(ctx) == nil {
			return
		}
		log.Warn("requests still in flight at the shutdown timeout were cut", "timeout", d)
	}
	g.Close()
}

// endpoints are the underlay addresses peers should send to.
func (n *Node) endpoints() []netip.AddrPort {
	out := slices.Clone(n.cfg.ExtraEndpoints)
	if n.member != nil {
		// Behind a NAT, where the coordinator's STUN responder saw us.
		if pub := n.member.Engine().PublicEndpoint(); pub.IsValid() && !slices.Contains(out, pub) {
			out = append(out, pub)
		}
	}
	local := n.cfg.Endpoints
	if len(local) == 0 {
		local = member.LocalEndpoints(n.cfg.ListenPort)
	}
	out = append(out, local...)
	return out[:min(len(out), wire.MaxEndpoints)]
}
