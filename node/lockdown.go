package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/moatmesh/moat/mesh/member"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/lockdown"
	"github.com/moatmesh/moat/policy"
)

// Audit records of the lockdown watch (API "node.lockdown"): the tables
// were lost, restored, or could not be re-applied.
const (
	apiLockdown      = "node.lockdown"
	decisionLost     = "lockdown-lost"
	decisionRestored = "lockdown-restored"
	decisionFailed   = "lockdown-failed"
)

// applyLockdown applies the configured lockdown (fail closed: the node
// does not start without it) or says loudly that there is none.
func (n *Node) applyLockdown(ctx context.Context) error {
	if n.cfg.Lockdown == nil {
		n.log.Warn("LOCKDOWN OFF: every process on this host may send anywhere, and nothing stops a model server or a generated script from sending prompts out; start with --lockdown host (the default of moat-node run and install.sh)")
		return nil
	}
	cfg, err := n.lockdownConfig()
	if err != nil {
		return fmt.Errorf("lockdown could not be applied, so this node will not serve models: %w", err)
	}
	l, err := lockdown.ApplyContext(ctx, cfg)
	if err != nil {
		return fmt.Errorf("lockdown could not be applied, so this node will not serve models: %w", err)
	}
	n.lock = l
	cfg = l.Config()
	n.log.Info("lockdown applied", "scope", cfg.Scope, "coordinator", cfg.CoordinatorURL, "dns", cfg.AllowDNS,
		"ntp", cfg.NTPServers, "dhcp", cfg.AllowDHCP, "inference_ports", cfg.InferencePorts)
	if _, skipped, perr := l.PacketFilter(); perr != nil {
		n.log.Warn("lockdown: packet sockets are not filtered on this kernel", "err", perr)
	} else if len(skipped) > 0 {
		n.log.Debug("lockdown: devices without a packet filter", "devices", skipped)
	}
	return nil
}

// lockdownConfig is the configured lockdown with what the node knows
// filled in where it is empty (see Config.Lockdown).
func (n *Node) lockdownConfig() (lockdown.Config, error) {
	cfg := *n.cfg.Lockdown
	if cfg.CoordinatorURL == "" && len(cfg.Coordinator) == 0 {
		cfg.CoordinatorURL = n.url
	}
	if len(cfg.CoordinatorUIDs) == 0 {
		cfg.CoordinatorUIDs = []uint32{uint32(os.Geteuid())}
		if os.Geteuid() != 0 {
			cfg.CoordinatorUIDs = append(cfg.CoordinatorUIDs, 0)
		}
	}
	if len(cfg.InferencePorts) == 0 {
		urls := make([]string, 0, len(n.cfg.Models)+len(n.cfg.MCP))
		for _, m := range n.cfg.Models {
			urls = append(urls, m.Upstream.URL)
		}
		for _, u := range n.cfg.MCP {
			urls = append(urls, u)
		}
		ports, err := lockdown.InferencePorts(urls...)
		if err != nil {
			return cfg, err
		}
		cfg.InferencePorts = ports
	}
	if cfg.WireGuardPort == 0 {
		cfg.WireGuardPort = n.cfg.ListenPort
	}
	if cfg.GuardPort == 0 {
		cfg.GuardPort = n.cfg.GuardPort
	}
	cfg.WireGuardExtra = append(slices.Clone(cfg.WireGuardExtra), n.wireGuardExtra()...)
	cfg.MCPEgress = n.stdioEgress() // nothing until the netmap says what
	return cfg, nil
}

// startLockdownWatch runs the lockdown's Watch in a goroutine owned by
// n; Close stops it before anything else.
func (n *Node) startLockdownWatch() {
	if n.lock == nil {
		return
	}
	if ln, err := net.Listen("unix", holderSocket); err != nil {
		n.log.Warn("another moat-node seems to watch a lockdown in this network namespace; `moat-node lockdown off` will not see this one", "err", err)
	} else {
		n.holder = ln
		n.watchWG.Go(func() { answerHolder(ln) })
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stopWatch = cancel
	n.watchWG.Go(func() {
		n.lock.Watch(ctx, n.onLockdownEvent)
	})
}

// onLockdownEvent logs e, keeps the guard's models stopped while the
// lockdown is not in force, records losses and restores in the audit
// spool and has the status sent to the coordinator.
func (n *Node) onLockdownEvent(e lockdown.Event) {
	n.holdModels(n.LockdownHealthy())
	n.recordEvent(e)
	decision := ""
	switch e.Kind {
	case lockdown.EventLost:
		n.log.Error("lockdown lost; restoring it", "reason", e.Reason)
		decision = decisionLost
	case lockdown.EventFailed:
		n.log.Error("lockdown NOT in force: re-applying it failed; every model answers 503 until it is back", "reason", e.Reason)
		decision = decisionFailed
	case lockdown.EventRestored:
		n.log.Warn("lockdown restored", "took", e.Took, "reason", e.Reason)
		decision = decisionRestored
	default:
		n.log.Info("lockdown "+string(e.Kind), "reason", e.Reason)
		return
	}
	n.auditLockdown(e, decision)
	n.kickStatus()
}

// holdModels stops every model while the lockdown is not in force.
func (n *Node) holdModels(ok bool, reason string) { holdModels(n.stops, n.cfg.Models, ok, reason) }

// holdModels stops every one of models in st while the lockdown is not
// in force (ok false), saying why, and serves them again once it is.
func holdModels(st *stops, models []Model, ok bool, reason string) {
	why := ""
	if !ok {
		why = "the node's network lockdown is not in force (" + reason + "); the node refuses requests until it is restored"
	}
	for _, m := range models {
		st.set(stopLockdown, m.Name, why)
	}
}

func (n *Node) auditLockdown(e lockdown.Event, decision string) {
	status := 503
	if e.Kind == lockdown.EventRestored {
		status = 200
	}
	rec := &audit.Record{Time: e.Time.UTC(), NodeID: string(n.st.DeviceID), Node: n.cfg.Hostname, API: apiLockdown,
		Decision: decision, Reason: e.Reason, Status: status, LatencyMS: e.Took.Milliseconds()}
	if err := n.spool.Append(rec); err != nil {
		n.log.Error("lockdown audit record lost", "err", err)
	}
	if n.ship != nil {
		n.ship.Kick()
	}
}

// recordEvent keeps the newest events for the node status.
func (n *Node) recordEvent(e lockdown.Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	ev := wire.LockdownEvent{Time: e.Time.UTC(), Kind: string(e.Kind), Reason: e.Reason, TookMS: e.Took.Milliseconds()}
	n.mu.events = append(n.mu.events, ev)
	if extra := len(n.mu.events) - wire.MaxLockdownEvents; extra > 0 {
		n.mu.events = append([]wire.LockdownEvent(nil), n.mu.events[extra:]...)
	}
}

func (n *Node) lockdownEvents() []wire.LockdownEvent {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]wire.LockdownEvent(nil), n.mu.events...)
}

// LockdownHealthy says whether the node's lockdown is in force, and if
// not why; true with "off" when the node runs without one.
func (n *Node) LockdownHealthy() (bool, string) {
	if n.lock == nil {
		return true, "off"
	}
	return n.lock.Healthy()
}

// lockdownSink keeps the lockdown's peer sets and network grants in step
// with the netmap.
type lockdownSink struct{ l *lockdown.Lockdown }

func (s lockdownSink) SetNetMap(nm *wire.NetMap) error {
	if err := s.l.UpdatePeers(lockdownPeers(nm)); err != nil {
		return err
	}
	// The grants first: a narrowed grant must not wait for the relays'
	// names to resolve. The relays that resolved are allowed even when
	// one did not (the member falls back past it).
	grantErr := s.l.SetNetworkGrants(networkGrants(nm))
	return errors.Join(grantErr, s.l.SetRelays(context.Background(), relayURLs(nm)))
}

// relayURLs are the relays the netmap names, which the node may use
// (mesh/member chooses among them); none means the coordinator's own,
// which the lockdown allows as the coordinator's API.
func relayURLs(nm *wire.NetMap) []string {
	out := make([]string, 0, len(nm.Relays))
	for _, r := range nm.Relays {
		out = append(out, r.URL)
	}
	return out
}

func lockdownPeers(nm *wire.NetMap) []lockdown.Peer {
	out := make([]lockdown.Peer, 0, len(nm.Peers))
	for _, p := range nm.Peers {
		out = append(out, lockdown.Peer{Addresses: p.Addresses, Endpoints: p.Endpoints})
	}
	return out
}

// networkGrants are the policy's network grants towards this node (such
// as "dst": ["tag:gpu:22"]), from its netmap's packet filter.
func networkGrants(nm *wire.NetMap) []policy.FilterRule {
	if nm.Rules == nil {
		return nil
	}
	out := make([]policy.FilterRule, 0, len(nm.Rules.Filter))
	for _, f := range nm.Rules.Filter {
		r := policy.FilterRule{Src: f.Src}
		for _, p := range f.Ports {
			r.Ports = append(r.Ports, policy.PortRange{First: p.First, Last: p.Last})
		}
		out = append(out, r)
	}
	return out
}

// wireGuardExtra is the underlay endpoints the WireGuard port may reach
// besides the peers and the coordinator's API: the coordinator's STUN
// responder, which tells the node its public address. The relays need no
// entry: they are TCP, allowed to moat-node like the coordinator's HTTPS
// port (the coordinator's own relay is that port; relays the netmap names
// are added by lockdownSink). applyLockdown adds the result to lockdown.Config.WireGuardExtra.
func (n *Node) wireGuardExtra() []netip.AddrPort {
	if srv, ok := member.STUNServer(n.url); ok {
		return []netip.AddrPort{srv}
	}
	return nil
}
