package node

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/guard"
)

// LocalConfig configures the parts of a node that do not depend on how
// callers reach it: for a node whose callers come through something other
// than a moat mesh member (a Tailscale or Headscale tailnet, node/tailnet).
// The zero value of each field means what its comment says.
type LocalConfig struct {
	// StateDir holds the audit spool (StateDir/audit), the key for
	// prompt hashes (audit.key) and the day's token counters
	// (limits.json). Required.
	StateDir string
	// NodeName and NodeID name the node in audit records. Default: empty.
	NodeName, NodeID string
	// Models are the models served. Required: at least one.
	Models []Model
	// IntegrityInterval is as Config.IntegrityInterval. Default (0)
	// DefaultIntegrityInterval.
	IntegrityInterval time.Duration
	// ShutdownTimeout is as Config.ShutdownTimeout. Default (0)
	// DefaultShutdownTimeout; negative: cut requests at once.
	ShutdownTimeout time.Duration
	// NoMFA is guard.Config.NoMFA: why no caller can prove a second factor
	// here. Default "": MFA is checked from the callers' identities.
	NoMFA string
	// Collectors are more Prometheus collectors the guard's metrics
	// serve. Default: none.
	Collectors []prometheus.Collector
	// Coordinator, when set, is the coordinator the node is enrolled at
	// (JoinCoordinator): the spool is shipped to it as a mesh node's is,
	// and the guard leases the organisation's limits and budgets from it.
	// Default nil: nothing leaves the node.
	Coordinator *Coordinator
	// Logger receives the logs. Default: discard.
	Logger *slog.Logger
}

// Local is a guard with the node's local duties around it: the
// hash-chained audit spool (kept on the node, `moat-node audit verify`
// checks it), the day's counters, the check that model servers listen on
// loopback only and the integrity checks of pinned weights files.
// Without LocalConfig.Coordinator nothing is shipped or leased. Give its
// Guard netmaps and serve it; Close stops everything.
type Local struct {
	cfg   LocalConfig
	guard *guard.Guard
	spool *audit.Spool
	ship  *audit.Shipper // nil without a coordinator
	stops *stops

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartLocal opens the spool, starts the guard (refusing everyone until
// its first netmap) and the integrity checks.
func StartLocal(cfg LocalConfig) (*Local, error) {
	if len(cfg.Models) == 0 {
		return nil, errors.New("node: no models configured; give at least one --model NAME=URL")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("node: no state directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.IntegrityInterval <= 0 {
		cfg.IntegrityInterval = DefaultIntegrityInterval
	}
	if err := checkPins(cfg.Models); err != nil {
		return nil, err
	}
	l := &Local{cfg: cfg}
	if err := l.start(); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Local) start() error {
	var err error
	if l.spool, err = audit.Open(filepath.Join(l.cfg.StateDir, "audit"), audit.Options{}); err != nil {
		return err
	}
	key, err := loadAuditKey(l.cfg.StateDir)
	if err != nil {
		return err
	}
	models := map[string]guard.Upstream{}
	for _, m := range l.cfg.Models {
		models[m.Name] = m.Upstream
	}
	gcfg := guard.Config{Models: models, NodeName: l.cfg.NodeName, NodeID: l.cfg.NodeID,
		Logger: l.cfg.Logger, Audit: l.spool, AuditKey: key, NoMFA: l.cfg.NoMFA,
		Counters: counterFile(filepath.Join(l.cfg.StateDir, "limits.json")), Collectors: l.cfg.Collectors}
	if c := l.cfg.Coordinator; c != nil {
		gcfg.Leases = c.ctl
		if l.ship, err = newShipper(c.ctl, l.cfg.StateDir, l.spool, l.cfg.Logger, nil, nil); err != nil {
			return err
		}
	}
	if l.guard, err = guard.New(gcfg); err != nil {
		return err
	}
	l.stops = newStops(l.guard)
	checkUpstreams(l.cfg.Models, l.stops, l.cfg.Logger)
	in := newIntegrity(l.cfg.Models, l.stops.from(stopIntegrity), l.spool, l.cfg.Logger, l.cfg.NodeName, l.cfg.NodeID)
	if in == nil {
		return nil
	}
	if err := l.guard.RegisterCollector(in.Collector()); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Go(func() { in.run(ctx, l.cfg.IntegrityInterval, func(context.Context) error { return nil }) })
	return nil
}

// HoldModels stops every model while the node's lockdown is not in force
// (ok false; reason says why) and serves them again once it is.
func (l *Local) HoldModels(ok bool, reason string) { holdModels(l.stops, l.cfg.Models, ok, reason) }

// Guard returns the guard: give it netmaps, serve it on listeners.
func (l *Local) Guard() *guard.Guard { return l.guard }

// Close lets the guard's requests in flight finish (up to
// ShutdownTimeout), stops the integrity checks and closes the spool.
func (l *Local) Close() error {
	if l.guard != nil {
		drain(l.guard, l.cfg.ShutdownTimeout, l.cfg.Logger)
	}
	if l.cancel != nil {
		l.cancel()
		l.wg.Wait()
	}
	if l.ship != nil {
		l.ship.Close()
	}
	if l.spool != nil {
		return l.spool.Close()
	}
	return nil
}
