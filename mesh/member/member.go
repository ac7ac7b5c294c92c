// Package member is what every mesh member shares, GPU node and employee
// device alike: its WireGuard key and state files, its control client,
// its WireGuard engine (kernel TUN or userspace netstack) and the loop
// that follows the coordinator's netmap stream.
//
// Each netmap the coordinator sends is applied to the engine first, which
// validates it (wire.NetMap.Validate, and that it is meant for this key)
// and refuses it whole when it is not; only a netmap the engine took is
// then handed to the sinks, in the order they were added. A sink is what
// a role builds on the member: the node's guard and lockdown, the
// client's router. Connection status changes (connected, coordinator
// unreachable, netmap refused) are reported to Config.OnStatus.
//
// A Member starts no goroutine of its own: Run follows the stream on the
// caller's goroutine, and Close makes every Run return, waits for them
// and closes the engine.
package member

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// Sink takes each netmap the member applied. The netmap is valid and
// meant for this member; it must not be modified. An error is logged and
// does not stop the other sinks.
type Sink interface {
	SetNetMap(nm *wire.NetMap) error
}

// Config configures a Member. Only PrivateKey is required.
type Config struct {
	// PrivateKey is the member's WireGuard key. Required.
	PrivateKey key.Private
	// Control is the coordinator client Run follows. Default: none yet;
	// call SetControl before Run.
	Control *control.Client
	// Backend is engine.Netstack (the zero value) or engine.TUN.
	Backend engine.Backend
	// ListenPort is the WireGuard UDP port. Default 0: a free port.
	ListenPort uint16
	// Logger receives the member's and the engine's logs. Default: none.
	Logger *slog.Logger
	// ReportEndpoints makes Run report the member's endpoints (ExtraEndpoints,
	// the public address STUN saw, the interface addresses) to the
	// coordinator whenever they change: for devices; nodes advertise
	// theirs with their models. Default false.
	ReportEndpoints bool
	// ExtraEndpoints are reported first (`moat --endpoint`): a port
	// forward to the WireGuard port. Default: none.
	ExtraEndpoints []netip.AddrPort
	// OnStatus is called on Run's goroutine whenever the connection
	// status changes: nil once a netmap was applied, else what is wrong
	// (the coordinator cannot be reached, or its netmap was refused:
	// errors.Is(err, ErrNetMapRefused)). Each Run starts afresh, so its
	// first status is always reported. Default: none.
	OnStatus func(error)
}

// ErrNetMapRefused marks a netmap the engine refused; the last good one
// stays in use.
var ErrNetMapRefused = errors.New("netmap refused")

// ErrClosed is what Run returns after Close.
var ErrClosed = errors.New("member: closed")

// errNoControl is what Run returns without a control client.
var errNoControl = errors.New("member: no control client; call SetControl first")

// Member is one member of the mesh. Its methods are safe for concurrent
// use.
type Member struct {
	cfg       Config
	log       *slog.Logger
	eng       *engine.Engine
	ready     chan struct{} // closed once the first netmap was applied
	newPublic chan struct{} // cap 1: STUN saw a new public address (endpoints.go)
	stunFor   string        // the coordinator URL SetSTUN was derived from; Run's goroutine only
	readyOnce sync.Once
	runs      sync.WaitGroup

	mu struct {
		sync.Mutex
		ctl      *control.Client
		sinks    []Sink
		netmap   *wire.NetMap
		closed   bool
		stopRuns context.CancelFunc // ends every Run's context
		stopped  context.Context
		chooser  *relayChooser // the relays' chooser, from the first netmap (relay.go)
	}
	statusMu struct {
		sync.Mutex
		reported bool
		last     string // the last status reported; "" = connected
	}
}

// New starts the member's engine, with no peers until Run applies a
// netmap.
func New(cfg Config) (*Member, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	eng, err := engine.New(engine.Config{PrivateKey: cfg.PrivateKey, ListenPort: cfg.ListenPort, Backend: cfg.Backend, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	m := &Member{cfg: cfg, log: cfg.Logger, eng: eng, ready: make(chan struct{}), newPublic: make(chan struct{}, 1)}
	if cfg.ReportEndpoints {
		eng.OnPublicEndpoint(func(netip.AddrPort) { m.publicChanged() })
	}
	m.mu.ctl = cfg.Control
	m.mu.stopped, m.mu.stopRuns = context.WithCancel(context.Background())
	return m, nil
}

// Engine returns the member's WireGuard engine.
func (m *Member) Engine() *engine.Engine { return m.eng }

// PublicKey is the member's WireGuard public key.
func (m *Member) PublicKey() key.Public { return m.eng.PublicKey() }

// AddSink adds s to the sinks of every netmap applied from now on.
func (m *Member) AddSink(s Sink) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.sinks = append(m.mu.sinks, s)
}

// SetControl makes c the coordinator client the next Run follows.
func (m *Member) SetControl(c *control.Client) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mu.ctl = c
}

// Control returns the current coordinator client (nil: none yet).
func (m *Member) Control() *control.Client {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.ctl
}

// NetMap returns the last netmap applied, nil before the first.
func (m *Member) NetMap() *wire.NetMap {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.netmap
}

// Ready is closed once the first netmap was applied to the engine and
// handed to every sink.
func (m *Member) Ready() <-chan struct{} { return m.ready }

// Run follows the netmap stream of the current control client,
// reconnecting as control.Client.Watch does, until ctx ends (ctx.Err()),
// Close is called (ErrClosed) or the coordinator refuses the credential
// (control.IsAuth). Netmaps stay applied when it returns.
func (m *Member) Run(ctx context.Context) error {
	ctl, stopped, err := m.startRun()
	if err != nil {
		return err
	}
	defer m.runs.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(stopped, cancel)
	defer stop()
	m.resetStatus()
	var reporters sync.WaitGroup
	defer reporters.Wait()
	defer cancel()
	if m.cfg.ReportEndpoints {
		reporters.Go(func() { m.reportEndpoints(ctx, ctl) })
	}
	reporters.Go(func() { m.reportPaths(ctx, ctl) })
	err = ctl.Watch(ctx, m.apply, func(err error) {
		if err != nil {
			m.report(err)
		}
	})
	if stopped.Err() != nil {
		return ErrClosed
	}
	return err
}

// startRun registers a Run, unless the member is closed.
func (m *Member) startRun() (*control.Client, context.Context, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.mu.closed:
		return nil, nil, ErrClosed
	case m.mu.ctl == nil:
		return nil, nil, errNoControl
	}
	m.runs.Add(1)
	return m.mu.ctl, m.mu.stopped, nil
}

// apply installs nm in the engine, then hands it to the sinks.
func (m *Member) apply(nm *wire.NetMap) {
	if err := m.eng.Reconfig(nm); err != nil {
		m.log.Error("netmap refused by the engine; keeping the last one", "err", err)
		m.report(fmt.Errorf("%w: %v", ErrNetMapRefused, err))
		return
	}
	m.mu.Lock()
	sinks := m.mu.sinks
	ctl := m.mu.ctl
	m.mu.Unlock()
	for _, s := range sinks {
		if err := s.SetNetMap(nm); err != nil {
			m.log.Error("netmap refused by a sink", "sink", fmt.Sprintf("%T", s), "err", err)
		}
	}
	// After the sinks: a node's lockdown allows a relay the netmap names
	// only in its sink, and the engine's first connection to it would be
	// dropped before.
	if ctl != nil {
		m.useRelay(nm, ctl)
	}
	// Published only now: whoever sees it in NetMap (`moat status`, a
	// script waiting to call the local endpoint) finds the sinks (the
	// router) already serving it.
	m.mu.Lock()
	m.mu.netmap = nm
	m.mu.Unlock()
	m.readyOnce.Do(func() { close(m.ready) })
	m.log.Debug("netmap applied", "seq", nm.Seq, "peers", len(nm.Peers))
	m.report(nil)
}

// resetStatus makes the next status be reported whatever it is.
func (m *Member) resetStatus() {
	m.statusMu.Lock()
	defer m.statusMu.Unlock()
	m.statusMu.reported = false
}

// report passes err to OnStatus when it differs from the last status.
func (m *Member) report(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	m.statusMu.Lock()
	changed := !m.statusMu.reported || msg != m.statusMu.last
	m.statusMu.reported, m.statusMu.last = true, msg
	m.statusMu.Unlock()
	if err != nil {
		m.log.Debug("coordinator connection", "err", err)
	}
	if changed && m.cfg.OnStatus != nil {
		m.cfg.OnStatus(err)
	}
}

// Close makes every Run return, waits for them, and closes the engine.
func (m *Member) Close() error {
	m.mu.Lock()
	m.mu.closed = true
	m.mu.stopRuns()
	m.mu.Unlock()
	m.runs.Wait()
	return m.eng.Close()
}
