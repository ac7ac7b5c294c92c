package tailnet

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"tailscale.com/ipn"
	"tailscale.com/tailcfg"
)

// Bounds of the wait before watching the tailnet's netmap again.
const (
	minWatchRetry = 100 * time.Millisecond
	maxWatchRetry = 10 * time.Second
)

// watch follows the tailnet's changes until ctx ends: after each change
// of peers or of the node itself, the known callers are asked about again
// (dropped when the tailnet no longer has them, revoked or expired) and
// the hooks of OnChange run.
func (n *Node) watch(ctx context.Context) {
	wait := minWatchRetry
	for ctx.Err() == nil {
		if err := n.watchOnce(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("tailnet netmap watch ended; watching again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxWatchRetry)
	}
}

func (n *Node) watchOnce(ctx context.Context) error {
	w, err := n.lc.WatchIPNBus(ctx, ipn.NotifyInitialNetMap|ipn.NotifyPeerChanges)
	if err != nil {
		return err
	}
	defer w.Close()
	for {
		msg, err := w.Next()
		if err != nil {
			return err
		}
		if msg.SelfChange == nil && len(msg.PeersChanged) == 0 && len(msg.PeersRemoved) == 0 && msg.NetMap == nil {
			continue
		}
		n.trackEndpoints(msg)
		n.refresh(ctx)
	}
}

// refresh brings the node's and its callers' identities up to date and
// runs the OnChange hooks.
func (n *Node) refresh(ctx context.Context) {
	if err := n.refreshSelf(ctx); err != nil {
		n.log.Warn("tailnet: own identity not refreshed", "err", err)
	}
	for _, k := range n.table.keys() {
		w, err := n.lc.WhoIsNodeKey(ctx, k)
		if err == nil {
			var c *caller
			if c, err = callerOf(w, n.cfg.CapName); err == nil {
				err = n.table.put(c)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			n.log.Info("tailnet caller gone or changed; no longer served", "device", k.ShortString(), "why", err)
			n.table.drop(k)
		}
	}
	n.mu.Lock()
	hooks := n.mu.onChange
	n.mu.Unlock()
	for _, h := range hooks {
		h(ctx)
	}
}

// OnChange adds fn to what runs after every change of the tailnet's
// netmap (the lockdown's allow-list follows it).
func (n *Node) OnChange(fn func(context.Context)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.onChange = append(n.mu.onChange, fn)
}

// trackEndpoints keeps the peers' direct endpoints as the netmap gives
// them: all of them in the first message, then the changes.
func (n *Node) trackEndpoints(msg ipn.Notify) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if msg.NetMap != nil {
		n.mu.endpoints = map[tailcfg.NodeID][]netip.AddrPort{}
		for _, p := range msg.NetMap.Peers {
			n.mu.endpoints[p.ID()] = p.Endpoints().AsSlice()
		}
	}
	if n.mu.endpoints == nil {
		n.mu.endpoints = map[tailcfg.NodeID][]netip.AddrPort{}
	}
	for _, p := range msg.PeersChanged {
		n.mu.endpoints[p.ID] = slices.Clone(p.Endpoints)
	}
	for _, id := range msg.PeersRemoved {
		delete(n.mu.endpoints, id)
	}
}
