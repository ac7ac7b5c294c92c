package lockdown

import (
	"fmt"
	"net/netip"
	"slices"
)

// TailnetPaths is what a node on a Tailscale or Headscale tailnet
// (node/tailnet) must reach beyond the control server, which is
// Config.CoordinatorURL: all of it comes from the tailnet's netmap and
// changes with it.
type TailnetPaths struct {
	// Relays are the DERP relays' HTTPS addresses (TCP). They are allowed
	// like the coordinator's API: to CoordinatorUIDs' sockets only, since
	// any process that reached a relay could carry data out through it.
	Relays []netip.AddrPort
	// STUN are the relays' STUN servers (UDP), reached from the
	// WireGuard port only, as the peers' endpoints are.
	STUN []netip.AddrPort
	// Peers are the tailnet peers: their direct UDP endpoints, reached
	// from the WireGuard port only.
	Peers []Peer
}

// SetTailnetPaths makes the tailnet's relays, STUN servers and peers the
// lockdown's, in one atomic batch of set changes (no rule changes): what
// the previous call allowed and this one does not is gone. It replaces
// what UpdatePeers set; the two are for different kinds of node.
func (l *Lockdown) SetTailnetPaths(p TailnetPaths) error {
	peers := slices.Clone(p.Peers)
	if len(p.STUN) > 0 {
		peers = append(peers, Peer{Endpoints: p.STUN})
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dyn.peers, l.dyn.relays = peers, slices.Clone(p.Relays)
	if err := l.syncLocked(); err != nil {
		return fmt.Errorf("lockdown: update tailnet paths: %w", err)
	}
	return nil
}
