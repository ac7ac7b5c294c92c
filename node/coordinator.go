package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// CoordinatorConfig configures a node's standing at a coordinator when
// its callers do not come through moat's mesh (a node on a tailnet,
// node/tailnet). The zero value of each field means what its comment
// says.
type CoordinatorConfig struct {
	// URL is the coordinator's. Required on first join; later runs use
	// the one in the state.
	URL string
	// Fingerprint pins a self-signed coordinator certificate. Default:
	// system roots.
	Fingerprint string
	// EnrollKey ("moat_ek_…") is needed only until the node has joined.
	EnrollKey wire.Secret
	// StateDir holds the node's key and credential (node.json), as a
	// mesh node's. Required.
	StateDir string
	// Hostname is shown to admins. Required.
	Hostname string
	// Logger receives the logs. Default: discard.
	Logger *slog.Logger
}

// Coordinator is a node enrolled at a coordinator without taking part in
// its mesh: it advertises no models and no endpoints (mesh members cannot
// reach it), holds the credential (renewing it as a mesh node does) for
// what the node asks of the coordinator: its rules, the audit it ships
// (LocalConfig.Coordinator) and the limits it leases. Close stops it.
type Coordinator struct {
	ctl    *control.Client
	st     *state
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// JoinCoordinator enrolls the node on first run (or when given an
// enrollment key) and starts renewing its credential.
func JoinCoordinator(ctx context.Context, cfg CoordinatorConfig) (*Coordinator, error) {
	if cfg.StateDir == "" || cfg.Hostname == "" {
		return nil, errors.New("node: a coordinator's node needs a state directory and a hostname")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := loadState(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	ctl, _, err := joinAt(ctx, st, cfg.StateDir, cfg.URL, cfg.Fingerprint, wire.EnrollRequest{AuthKey: cfg.EnrollKey, Hostname: cfg.Hostname}, cfg.Logger)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{ctl: ctl, st: st}
	rctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	r := &renewer{st: st, dir: cfg.StateDir, log: cfg.Logger}
	c.wg.Go(func() { r.loop(rctx, ctl) })
	return c, nil
}

// Control returns the control client, holding the node's credential.
func (c *Coordinator) Control() *control.Client { return c.ctl }

// DeviceID returns the node's ID at the coordinator.
func (c *Coordinator) DeviceID() wire.DeviceID { return c.st.DeviceID }

// Close stops renewing the credential.
func (c *Coordinator) Close() {
	c.cancel()
	c.wg.Wait()
}
