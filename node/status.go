package node

import (
	"cmp"
	"context"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/lockdown"
)

// nodeStatus is the status the node sends with its advertisement: the
// integrity of pinned weights files, the lockdown and where its data sits
// (looked at again for each report).
func (n *Node) nodeStatus() wire.NodeStatus {
	var st wire.NodeStatus
	if n.integ != nil {
		st.Integrity = n.integ.snapshot()
	}
	if n.atRest != nil {
		n.atRest.refresh()
		st.AtRest = n.atRest.snapshot()
	}
	st.Lockdown = lockdownStatus(n.lock, time.Now())
	st.Lockdown.Events = n.lockdownEvents()
	return st
}

// lockdownStatus reads l back for the node status; l is nil when the
// lockdown is off.
func lockdownStatus(l *lockdown.Lockdown, now time.Time) *wire.LockdownStatus {
	out := &wire.LockdownStatus{Checked: now, Mode: "off"}
	if l == nil {
		return out
	}
	out.Mode = string(l.Config().Scope)
	if ok, reason := l.Healthy(); !ok {
		out.Problem = reason
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

// DefaultStatusInterval is how often a node reports its status when
// nothing else made it report.
const DefaultStatusInterval = 5 * time.Minute

// advertise tells the coordinator the node's endpoints, models and
// status. Calls take turns, so the last to arrive carries the newest
// status.
func (n *Node) advertise(ctx context.Context) error {
	n.advertiseMu.Lock()
	defer n.advertiseMu.Unlock()
	return n.member.Control().Advertise(ctx, n.endpoints(), n.advertisedModels(), n.nodeStatus())
}

// reportStatus advertises every interval (0: DefaultStatusInterval)
// and whenever kickStatus asks, until ctx ends, so that the
// coordinator's view of the lockdown stays fresh.
func (n *Node) reportStatus(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(cmp.Or(interval, DefaultStatusInterval))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		}
		if err := n.advertise(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("status not reported to the coordinator; will retry", "err", err)
		}
	}
}

// kickStatus asks reportStatus to send the status now, without waiting.
func (n *Node) kickStatus() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}
