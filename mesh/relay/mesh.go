package relay

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"

	"tailscale.com/derp"
	"tailscale.com/derp/derphttp"
	"tailscale.com/net/netmon"
	tskey "tailscale.com/types/key"

	"github.com/moatmesh/moat/mesh/key"
)

// Relays mesh as DERP servers of one region do: each connects to every
// other as a trusted client (it holds the shared mesh key), watches who
// is connected there, and forwards packets for those members over that
// connection. A member attached to one relay so reaches a member
// attached to another, and each relay still admits only its own
// members.

// MeshWith forwards packets for the members of the relay at url (another
// replica's, "https://HOST[:PORT]/derp"), which must present the key peer
// (its Server.PublicKey), hold this relay's mesh key and run MeshWith
// towards this one for the other direction. tlsConf verifies it (nil: the
// system roots); over plain HTTP the pinned key alone stands between the
// mesh key and a man in the middle. It connects, and reconnects, until
// stop is called; stop forgets the forwarding.
func (s *Server) MeshWith(rawURL string, peer key.Public, tlsConf *tls.Config) (stop func(), err error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if peer.IsZero() {
		return nil, fmt.Errorf("relay %s: no key to pin", rawURL)
	}
	logf := func(format string, args ...any) {
		s.log.Debug("relay mesh "+u.Host+": "+fmt.Sprintf(format, args...), "peer", rawURL)
	}
	dc, err := derphttp.NewClient(s.derp.PrivateKey(), plainURL(u), logf, netmon.NewStatic())
	if err != nil {
		return nil, err
	}
	dc.MeshKey = s.derp.MeshKey()
	dc.WatchConnectionChanges = true
	dc.SetURLDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := dialRelay(ctx, u, addr, nil, tlsConf)
		if err != nil {
			return nil, err
		}
		return &pinnedConn{Conn: nc, want: peer}, nil
	})
	f := &meshPeer{s: s, dc: dc, keys: map[tskey.NodePublic]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		dc.RunWatchConnectionLoop(ctx, s.derp.PublicKey(), logf, f.add, f.remove, nil)
	}()
	return func() {
		cancel()
		dc.Close()
		<-done
		f.forget()
	}, nil
}

// meshPeer is this relay's forwarding towards one other relay.
type meshPeer struct {
	s  *Server
	dc *derphttp.Client

	mu   sync.Mutex
	keys map[tskey.NodePublic]bool // members there this relay forwards to
}

// add forwards packets for a member that connected to the other relay.
func (f *meshPeer) add(m derp.PeerPresentMessage) {
	if m.Flags&derp.PeerPresentIsMeshPeer != 0 {
		return // a relay (or a watcher), not a member
	}
	f.mu.Lock()
	f.keys[m.Key] = true
	f.mu.Unlock()
	f.s.derp.AddPacketForwarder(m.Key, f.dc)
}

// remove stops forwarding for a member that left the other relay.
func (f *meshPeer) remove(m derp.PeerGoneMessage) {
	f.mu.Lock()
	delete(f.keys, m.Peer)
	f.mu.Unlock()
	f.s.derp.RemovePacketForwarder(m.Peer, f.dc)
}

// forget stops forwarding for every member of the other relay.
func (f *meshPeer) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.keys {
		f.s.derp.RemovePacketForwarder(k, f.dc)
	}
	clear(f.keys)
}
