package node

import (
	"net"
	"path/filepath"

	"github.com/moatmesh/moat/node/audit"
)

// ServeLocal serves the node's Prometheus metrics and a health check on
// ln (moat-node --metrics-listen), without identity checks: keep ln on
// loopback or a monitoring network. It returns when the node closes.
func (n *Node) ServeLocal(ln net.Listener) error { return n.guard.ServeLocal(ln) }

// registerMetrics adds the audit shipping lag and, with pinned models,
// their integrity to the guard's metrics. Call it once after the guard
// and the integrity checker started.
func (n *Node) registerMetrics() error {
	if err := n.guard.RegisterCollector(audit.Collector(filepath.Join(n.cfg.StateDir, "audit"))); err != nil {
		return err
	}
	if n.integ != nil {
		return n.guard.RegisterCollector(n.integ.Collector())
	}
	return nil
}
