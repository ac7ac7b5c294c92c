package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
)

// spoolRetention says how long the node's spool keeps a delivered record:
// its grant's audit.retention in the newest rules, else the node's
// default (Config.AuditRetention). It is a member.Sink; until the first
// netmap it keeps every record (a grant's longer retention is not known
// yet).
type spoolRetention struct {
	def time.Duration

	mu     sync.Mutex
	grants map[string]time.Duration // grant ID → its audit.retention; nil before the first netmap
}

func (r *spoolRetention) SetNetMap(nm *wire.NetMap) error {
	grants := map[string]time.Duration{}
	if nm.Rules != nil {
		for _, g := range append(nm.Rules.Grants, nm.Rules.MCPGrants...) {
			if g.Audit.Retention > 0 {
				grants[g.ID] = time.Duration(g.Audit.Retention)
			}
		}
	}
	r.mu.Lock()
	r.grants = grants
	r.mu.Unlock()
	return nil
}

// keep is the audit.RetentionFunc of the node's spool.
func (r *spoolRetention) keep(rec *audit.Record) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.grants == nil {
		return 0
	}
	if d, ok := r.grants[rec.Grant]; ok && rec.Grant != "" {
		return d
	}
	return r.def
}

// retentionEvent writes the event record of a retention run into the
// chain, which ships its checkpoint to the coordinator.
func (n *Node) retentionEvent(cp audit.Checkpoint) {
	rec := &audit.Record{Time: cp.Time, NodeID: string(n.st.DeviceID), Node: n.cfg.Hostname, API: audit.APIRetention,
		Decision: "deleted", Reason: fmt.Sprintf("retention deleted delivered records %d–%d from the node's spool; the chain continues from record %d's hash %s", cp.First, cp.Last, cp.Last, cp.Head)}
	if err := n.spool.Append(rec); err != nil {
		n.log.Error("retention audit record lost", "err", err)
	}
	n.log.Info("audit retention deleted delivered records from the spool", "first", cp.First, "last", cp.Last)
}
