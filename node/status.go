package node

import (
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/lockdown"
)

// nodeStatus is the status the node sends with its advertisement: the
// integrity of pinned weights files and the lockdown.
func (n *Node) nodeStatus() wire.NodeStatus {
	var st wire.NodeStatus
	if n.integ != nil {
		st.Integrity = n.integ.snapshot()
	}
	st.Lockdown = lockdownStatus(n.lock, time.Now())
	return st
}

// lockdownStatus reads l back for the node status; l is nil when the
// lockdown is off.
func lockdownStatus(l *lockdown.Lockdown, now time.Time) *wire.LockdownStatus {
	out := &wire.LockdownStatus{Checked: now}
	if l == nil {
		return out
	}
	st, err := l.Status()
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Active, out.Scope = true, string(st.Scope)
	for _, c := range st.Counters {
		out.Dropped = append(out.Dropped, wire.LockdownDrops{Category: c.Category, Packets: c.Packets, Bytes: c.Bytes})
	}
	return out
}
