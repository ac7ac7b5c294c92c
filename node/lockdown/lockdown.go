// Package lockdown locks a GPU node down at the packet level with
// nftables tables of its own ("inet moat", and "netdev moat" for packet
// sockets), so that a compromised model server, a generated script or a
// prompt injection cannot send data out, and the inference server
// cannot be reached except through loopback.
//
// Apply builds the tables in one atomic netlink batch; UpdatePeers keeps
// the named sets in step with the netmap, again in one batch; Watch
// notices when the tables are deleted, flushed or changed, or when
// interfaces change, re-applies them at once and reports each event;
// Healthy says whether the lockdown is in force; Status reads back the
// rules, sets and per-category drop counters; Off deletes the tables and
// nothing else. CheckLoopbackOnly verifies that an upstream inference
// server listens on loopback only. docs/lockdown.md says what is allowed
// and why.
package lockdown

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// TableName is the name of the lockdown's tables: one of family inet,
// and one of family netdev for the packet filter. Nothing outside them
// is ever created, changed or deleted.
const TableName = "moat"

// ErrNotApplied is returned by Inspect when there is no lockdown table.
var ErrNotApplied = errors.New("lockdown is not applied: there is no nftables table inet " + TableName)

// Lockdown is an applied lockdown. Its methods are safe for concurrent use.
type Lockdown struct {
	mu        sync.Mutex // serialises batches and guards the fields below
	cfg       Config     // with defaults, as applied
	cgid      uint64     // of cfg.ServiceCgroup
	dyn       dynamic    // peers and resolved names, kept for re-applying
	ifs       ifaces     // as applied
	packetErr error      // why packet sockets are not filtered, or nil
	fp        string     // fingerprint of the tables as last written
	pod       podState   // the pod scope's source and failures (podwatch.go)

	health atomic.Pointer[health]
}

func table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
}

// Apply is ApplyContext with a background context.
func Apply(cfg Config) (*Lockdown, error) { return ApplyContext(context.Background(), cfg) }

// ApplyContext validates cfg, resolves CoordinatorURL and NTPServers
// (ctx bounds the lookups) and installs the lockdown as a single atomic
// batch, replacing any earlier lockdown tables in the same batch (so the
// host is never left open in between). Peers start empty: call
// UpdatePeers with the netmap's peers next, and run Watch. If it fails
// nothing has changed, and the node must not serve models (fail
// closed); the error says why.
func ApplyContext(ctx context.Context, cfg Config) (*Lockdown, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("lockdown: invalid configuration: %w", err)
	}
	l := &Lockdown{cfg: cfg}
	if cfg.ServiceCgroup != "" {
		if l.cgid, err = cgroupID(cfg.ServiceCgroup); err != nil {
			return nil, fmt.Errorf("lockdown: %w", err)
		}
	}
	if l.cfg.MCPEgress, err = resolveMCPCgroups(cfg.MCPEgress); err != nil {
		return nil, fmt.Errorf("lockdown: %w", err)
	}
	if l.dyn.pods, err = findPods(cfg.PodCgroups); err != nil {
		return nil, fmt.Errorf("lockdown: %w", err)
	}
	if cfg.PodSource != nil {
		l.pod.srcErr = errPodSourceSilent // healthy only once Watch's source answered
	}
	if l.dyn.coordinator, l.dyn.ntp, err = resolveNames(ctx, cfg); err != nil {
		return nil, fmt.Errorf("lockdown: %w", err)
	}
	l.packetErr = probePacketFilter()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.installLocked(); err != nil {
		return nil, err
	}
	return l, nil
}

// installLocked writes both tables from scratch for the current
// interfaces, sets and peers, and records their fingerprint.
func (l *Lockdown) installLocked() error {
	ifs, err := readIfaces(l.cfg.MeshInterface)
	if err != nil {
		return fmt.Errorf("lockdown: %w", err)
	}
	conn, err := newConn()
	if err != nil {
		return fmt.Errorf("lockdown: open netlink: %w", err)
	}
	if err := build(conn, l.cfg, l.cgid, ifs, l.dyn); err != nil {
		return fmt.Errorf("lockdown: build table: %w", err)
	}
	if l.packetErr == nil {
		buildNetdev(conn, l.cfg, ifs)
	} else {
		deleteNetdev(conn)
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("lockdown: install nftables table inet %s: %w "+
			"(needs root or CAP_NET_ADMIN and a kernel with nf_tables, nft_reject_inet, nft_socket, nft_log, nft_limit)", TableName, err)
	}
	l.ifs = ifs
	return l.recordLocked()
}

// recordLocked reads back what the kernel now holds as the state to
// compare against, and marks the lockdown healthy.
func (l *Lockdown) recordLocked() error {
	fp, err := fingerprint()
	if err != nil {
		return fmt.Errorf("lockdown: read back: %w", err)
	}
	l.fp = fp
	if why := l.podsUnknownLocked(); why != "" {
		l.setUnhealthy(why, time.Now()) // the tables are right, but some pods may not be in them
		return nil
	}
	l.health.Store(&health{ok: true})
	return nil
}

// build queues the whole inet table on conn: replace the table, then
// sets, counters, drop chains and the base chains.
func build(conn *nftables.Conn, cfg Config, cgid uint64, ifs ifaces, d dynamic) error {
	t := table()
	conn.AddTable(t) // so the delete below cannot fail
	conn.DelTable(t)
	conn.AddTable(t)
	want, sets := wantElems(cfg, d), newSets(t)
	for _, def := range setDefs {
		if err := conn.AddSet(sets[def.name], toElements(want[def.name])); err != nil {
			return fmt.Errorf("set %s: %w", def.name, err)
		}
	}
	p := newPlan(cfg, cgid, d.pods, ifs, sets)
	for _, cat := range p.cats {
		conn.AddObj(&nftables.CounterObj{Table: t, Name: cat})
		addRules(conn, conn.AddChain(&nftables.Chain{Name: "drop_" + cat, Table: t}), dropRules(cat, cfg.LogRate))
	}
	drop, acc := nftables.ChainPolicyDrop, nftables.ChainPolicyAccept
	policy := &drop
	if cfg.Scope == ScopeService {
		policy = &acc
	}
	for _, bc := range []struct {
		name   string
		hook   *nftables.ChainHook
		prio   *nftables.ChainPriority
		policy *nftables.ChainPolicy
		rules  []rule
	}{
		{"output", nftables.ChainHookOutput, nftables.ChainPriorityFilter, policy, p.output},
		{"input", nftables.ChainHookInput, nftables.ChainPriorityFilter, policy, p.input},
		{"forward", nftables.ChainHookForward, nftables.ChainPriorityFilter, policy, p.forward},
		{"prerouting", nftables.ChainHookPrerouting, nftables.ChainPriorityMangle, &acc, p.prerouting},
	} {
		ch := conn.AddChain(&nftables.Chain{Name: bc.name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: bc.hook, Priority: bc.prio, Policy: bc.policy})
		addRules(conn, ch, bc.rules)
	}
	return nil
}

func addRules(conn *nftables.Conn, ch *nftables.Chain, rules []rule) {
	for _, r := range rules {
		conn.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: r.exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.comment)})
	}
}

// dropRules count a packet in its category, log it at a rate limit, and
// reject it (egress: TCP reset, else ICMP admin-prohibited) or drop it
// (ingress, and frames at the netdev hook: the sender learns nothing).
func dropRules(cat string, logRate int) []rule {
	out := []rule{{"counter name " + cat, []expr.Any{counterRef(cat)}}}
	if logRate > 0 {
		prefix := "moat drop " + cat + ": "
		out = append(out, rule{fmt.Sprintf("limit rate %d/minute log prefix '%s'", logRate, prefix), logLimited(logRate, prefix)})
	}
	switch cat {
	case CatIngressInference, CatIngressMesh, CatIngressOther, CatEgressPacket:
		return append(out, rule{"drop", []expr.Any{verdict(expr.VerdictDrop)}})
	}
	return append(out,
		rule{"meta l4proto tcp reject with tcp reset", append(l4proto(6), rejectTCP())},
		rule{"reject with icmpx admin-prohibited", []expr.Any{rejectAdmin()}})
}

// UpdatePeers makes the peer sets hold exactly peers' mesh addresses and
// WireGuard endpoints (plus the coordinator's WireGuard endpoints and
// WireGuardExtra), in one atomic batch that deletes what is gone and
// adds what is new. Rules are not touched. The peers are kept, so a
// re-applied table has them too.
func (l *Lockdown) UpdatePeers(peers []Peer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dyn.peers = peers
	if err := l.syncLocked(); err != nil {
		return fmt.Errorf("lockdown: update peers: %w", err)
	}
	return nil
}

// syncLocked brings every set to what the configuration and the dynamic
// state want, in one batch.
func (l *Lockdown) syncLocked() error {
	conn, err := newConn()
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	want := wantElems(l.cfg, l.dyn)
	changed := false
	for _, d := range setDefs {
		c, err := queueDiff(conn, d.set(table()), want[d.name])
		if err != nil {
			return err
		}
		changed = changed || c
	}
	if !changed {
		return nil
	}
	if err := conn.Flush(); err != nil {
		return err
	}
	fp, err := fingerprint()
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	l.fp = fp
	return nil
}

// queueDiff reads s from the kernel and queues the element changes that
// turn it into want. It reports whether anything was queued.
func queueDiff(conn *nftables.Conn, s *nftables.Set, want [][]byte) (bool, error) {
	have, err := conn.GetSetElements(s)
	if err != nil {
		return false, fmt.Errorf("read set %s (the lockdown table is missing; Watch restores it): %w", s.Name, err)
	}
	haveKeys := make([][]byte, len(have))
	for i, e := range have {
		haveKeys[i] = e.Key
	}
	add, del := diffKeys(haveKeys, want)
	if len(del) > 0 {
		if err := conn.SetDeleteElements(s, toElements(del)); err != nil {
			return false, fmt.Errorf("set %s: %w", s.Name, err)
		}
	}
	if len(add) > 0 {
		if err := conn.SetAddElements(s, toElements(add)); err != nil {
			return false, fmt.Errorf("set %s: %w", s.Name, err)
		}
	}
	return len(add)+len(del) > 0, nil
}

// Config returns the configuration as applied, defaults filled in.
func (l *Lockdown) Config() Config { return l.cfg }

// Status reads the lockdown back from the kernel; see Inspect.
func (l *Lockdown) Status() (Status, error) { return Inspect() }

// Remove deletes the lockdown's tables; see Off. A running Watch would
// restore them: stop it first.
func (l *Lockdown) Remove() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Off()
}

// Off deletes the tables inet moat and netdev moat, with everything in
// them, and nothing else. It succeeds when there are no such tables.
func Off() error {
	conn, err := newConn()
	if err != nil {
		return fmt.Errorf("lockdown off: open netlink: %w", err)
	}
	t := table()
	conn.AddTable(t) // create-then-delete in one batch: idempotent
	conn.DelTable(t)
	deleteNetdev(conn)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("lockdown off: delete table inet %s: %w", TableName, err)
	}
	return nil
}
