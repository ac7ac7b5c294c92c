// Package lockdown locks a GPU node down at the packet level with one
// nftables table of its own ("inet moat"), so that a compromised model
// server, a generated script or a prompt injection cannot send data out,
// and the inference server cannot be reached except through loopback.
//
// Apply builds the whole table in one atomic netlink batch; UpdatePeers
// keeps its named sets in step with the netmap, again in one batch; Status
// reads back the rules, sets and per-category drop counters; Off deletes
// the table and nothing else. CheckLoopbackOnly verifies that an upstream
// inference server listens on loopback only. docs/lockdown.md says what is
// allowed and why.
package lockdown

import (
	"errors"
	"fmt"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

// TableName is the name of the lockdown's table, of family inet.
// Nothing outside this table is ever created, changed or deleted.
const TableName = "moat"

// ErrNotApplied is returned by Inspect when there is no lockdown table.
var ErrNotApplied = errors.New("lockdown is not applied: there is no nftables table inet " + TableName)

// Lockdown is an applied lockdown. Its methods are safe for concurrent use.
type Lockdown struct {
	mu  sync.Mutex // serialises batches from this value
	cfg Config     // with defaults, as applied
}

func table() *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyINet, Name: TableName}
}

// Apply validates cfg and installs the lockdown it describes as a single
// atomic batch, replacing any earlier lockdown table in the same batch (so
// the host is never left open in between). Peers start empty: call
// UpdatePeers with the netmap's peers next. If Apply fails nothing has
// changed, and the node must not serve models (fail closed); the error
// says why.
func Apply(cfg Config) (*Lockdown, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("lockdown: invalid configuration: %w", err)
	}
	var cgid uint64
	if cfg.ServiceCgroup != "" {
		if cgid, err = cgroupID(cfg.ServiceCgroup); err != nil {
			return nil, fmt.Errorf("lockdown: %w", err)
		}
	}
	conn, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("lockdown: open netlink: %w", err)
	}
	if err := build(conn, cfg, cgid); err != nil {
		return nil, fmt.Errorf("lockdown: build table: %w", err)
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("lockdown: install nftables table inet %s: %w "+
			"(needs root or CAP_NET_ADMIN and a kernel with nf_tables, nft_reject_inet, nft_socket, nft_log, nft_limit)", TableName, err)
	}
	return &Lockdown{cfg: cfg}, nil
}

// build queues the whole table on conn: replace the table, then sets,
// counters, drop chains and the two base chains.
func build(conn *nftables.Conn, cfg Config, cgid uint64) error {
	t := table()
	conn.AddTable(t) // so the delete below cannot fail
	conn.DelTable(t)
	conn.AddTable(t)
	static, sets := staticElems(cfg), newSets(t)
	for _, d := range setDefs {
		if err := conn.AddSet(sets[d.name], toElements(static[d.name])); err != nil {
			return fmt.Errorf("set %s: %w", d.name, err)
		}
	}
	p := newPlan(cfg, cgid, sets)
	for _, cat := range p.cats {
		conn.AddObj(&nftables.CounterObj{Table: t, Name: cat})
		addRules(conn, conn.AddChain(&nftables.Chain{Name: "drop_" + cat, Table: t}), dropRules(cat, cfg.LogRate))
	}
	policy := nftables.ChainPolicyDrop
	if cfg.Scope == ScopeService {
		policy = nftables.ChainPolicyAccept
	}
	for _, bc := range []struct {
		name  string
		hook  *nftables.ChainHook
		rules []rule
	}{{"output", nftables.ChainHookOutput, p.output}, {"input", nftables.ChainHookInput, p.input}} {
		ch := conn.AddChain(&nftables.Chain{Name: bc.name, Table: t, Type: nftables.ChainTypeFilter,
			Hooknum: bc.hook, Priority: nftables.ChainPriorityFilter, Policy: &policy})
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
// (ingress: the sender learns nothing).
func dropRules(cat string, logRate int) []rule {
	out := []rule{{"counter name " + cat, []expr.Any{counterRef(cat)}}}
	if logRate > 0 {
		prefix := "moat drop " + cat + ": "
		out = append(out, rule{fmt.Sprintf("limit rate %d/minute log prefix '%s'", logRate, prefix), logLimited(logRate, prefix)})
	}
	if cat == CatIngressInference || cat == CatIngressMesh || cat == CatIngressOther {
		return append(out, rule{"drop", []expr.Any{verdict(expr.VerdictDrop)}})
	}
	return append(out,
		rule{"meta l4proto tcp reject with tcp reset", append(l4proto(6), rejectTCP())},
		rule{"reject with icmpx admin-prohibited", []expr.Any{rejectAdmin()}})
}

// UpdatePeers makes the peer sets hold exactly peers' mesh addresses and
// WireGuard endpoints (plus the coordinator's WireGuard endpoints), in one
// atomic batch that deletes what is gone and adds what is new. Rules are
// not touched.
func (l *Lockdown) UpdatePeers(peers []Peer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("lockdown: update peers: open netlink: %w", err)
	}
	want := peerElems(l.cfg, peers)
	changed := false
	for _, d := range setDefs {
		keys, ok := want[d.name]
		if !ok {
			continue
		}
		c, err := queueDiff(conn, d.set(table()), keys)
		if err != nil {
			return fmt.Errorf("lockdown: update peers: %w", err)
		}
		changed = changed || c
	}
	if !changed {
		return nil
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("lockdown: update peers: %w", err)
	}
	return nil
}

// queueDiff reads s from the kernel and queues the element changes that
// turn it into want. It reports whether anything was queued.
func queueDiff(conn *nftables.Conn, s *nftables.Set, want [][]byte) (bool, error) {
	have, err := conn.GetSetElements(s)
	if err != nil {
		return false, fmt.Errorf("read set %s (is the lockdown still applied?): %w", s.Name, err)
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

// Remove deletes the lockdown's table; see Off.
func (l *Lockdown) Remove() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Off()
}

// Off deletes the table inet moat, with everything in it, and nothing
// else. It succeeds when there is no such table.
func Off() error {
	conn, err := nftables.New()
	if err != nil {
		return fmt.Errorf("lockdown off: open netlink: %w", err)
	}
	t := table()
	conn.AddTable(t) // create-then-delete in one batch: idempotent
	conn.DelTable(t)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("lockdown off: delete table inet %s: %w", TableName, err)
	}
	return nil
}
