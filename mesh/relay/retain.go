package relay

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"sync"

	"tailscale.com/derp"
	"tailscale.com/derp/derpserver"
	tskey "tailscale.com/types/key"

	"github.com/moatmesh/moat/mesh/key"
)

// DERP checks admission only when a member connects. A member revoked
// later must lose the relay at once, so the relay keeps its own view of
// who is connected and closes connections on request: a watcher is an
// in-process DERP client holding the mesh key, over a pipe, to which the
// server reports every connection change (as it does to the other relays
// of its mesh) and whose "close peer" frames it obeys.

// Retain closes the connection of every member connected here that keep
// rejects and Admit, asked again, refuses too. The coordinator calls it
// with the live keys of each netmap recompute; the second question stops
// a recompute that began before a member enrolled from cutting it off.
// Relays of the mesh are never closed: each closes its own members.
func (s *Server) Retain(ctx context.Context, keep func(key.Public) bool) {
	for _, k := range s.watch.connected() {
		if keep(publicOf(k)) || s.admit(ctx, publicOf(k)) {
			continue
		}
		s.log.Info("relay: closing the connection of a member no longer admitted", "key", publicOf(k).Short())
		if err := s.watch.dc.ClosePeer(k); err != nil {
			s.log.Warn("relay: could not close a member's connection", "key", publicOf(k).Short(), "err", err)
		}
	}
}

// watcher tracks the members connected to one relay server.
type watcher struct {
	dc   *derp.Client
	nc   net.Conn
	done sync.WaitGroup

	mu struct {
		sync.Mutex
		members map[tskey.NodePublic]bool // connected members (not mesh peers)
	}
}

// startWatcher connects a watcher to srv, which must have its mesh key.
func startWatcher(srv *derpserver.Server, log *slog.Logger) (*watcher, error) {
	mine, theirs := net.Pipe()
	go srv.Accept(context.Background(), theirs, bufio.NewReadWriter(bufio.NewReader(theirs), bufio.NewWriter(theirs)), "127.0.0.1:0")
	dc, err := derp.NewClient(tskey.NewNode(), mine, bufio.NewReadWriter(bufio.NewReader(mine), bufio.NewWriter(mine)),
		func(string, ...any) {}, derp.MeshKey(srv.MeshKey()))
	if err != nil {
		mine.Close()
		return nil, err
	}
	w := &watcher{dc: dc, nc: mine}
	w.mu.members = map[tskey.NodePublic]bool{}
	w.done.Add(1)
	go w.loop(log) // reading first: a pipe has no buffer
	if err := dc.WatchConnectionChanges(); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// loop follows the server's connection changes until the pipe closes.
func (w *watcher) loop(log *slog.Logger) {
	defer w.done.Done()
	for {
		m, err := w.dc.Recv()
		if err != nil {
			log.Debug("relay: watcher stopped", "err", err)
			return
		}
		w.mu.Lock()
		switch m := m.(type) {
		case derp.PeerPresentMessage:
			if m.Flags&derp.PeerPresentIsMeshPeer == 0 {
				w.mu.members[m.Key] = true
			}
		case derp.PeerGoneMessage:
			delete(w.mu.members, m.Peer)
		}
		w.mu.Unlock()
	}
}

// connected returns the keys of the members connected now.
func (w *watcher) connected() []tskey.NodePublic {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]tskey.NodePublic, 0, len(w.mu.members))
	for k := range w.mu.members {
		out = append(out, k)
	}
	return out
}

// close ends the watcher's connection and waits for its loop.
func (w *watcher) close() {
	w.nc.Close()
	w.done.Wait()
}
