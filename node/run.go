package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/moatmesh/moat/mesh/member"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/guard"
)

// Bounds of the wait between two tries to listen on the mesh.
const (
	minListenRetry = time.Second
	maxListenRetry = 30 * time.Second
)

// Run follows the netmap stream until ctx ends or the node's credential is
// refused (revoked: it must join again). The guard listens on the mesh as
// soon as the node has its first netmap.
//
// When the guard cannot listen (its port is taken on a mesh address, say),
// the node keeps running but stops advertising its models, so that the
// coordinator stops offering them to clients at once; it logs the reason
// as an error, GuardError returns it, and the node tries again every
// little while (up to maxListenRetry) and advertises its models again once
// the guard listens. Stopping the node instead would leave the models
// advertised until the coordinator noticed, and under systemd would turn
// one taken port into a restart loop that advertises them at every start.
func (n *Node) Run(ctx context.Context) error {
	if err := n.advertise(ctx); err != nil {
		n.log.Warn("advertise", "err", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { n.reportStatus(ctx, n.cfg.StatusInterval) })
	wg.Go(func() { n.serveGuard(ctx) })
	defer wg.Wait()
	defer cancel() // before the Wait
	err := n.member.Run(ctx)
	if errors.Is(err, context.Canceled) || errors.Is(err, member.ErrClosed) {
		return nil
	}
	return err
}

// serveGuard serves the guard on the mesh from the first netmap until ctx
// ends or the guard is closed, listening again after every failure.
func (n *Node) serveGuard(ctx context.Context) {
	select {
	case <-n.member.Ready():
	case <-ctx.Done():
		return
	default:
		n.log.Info("waiting for the first netmap from the coordinator; the guard listens once it arrives")
		select {
		case <-n.member.Ready():
		case <-ctx.Done():
			return
		}
	}
	wait := minListenRetry
	for {
		err := n.serveOnce(ctx)
		if ctx.Err() != nil || errors.Is(err, guard.ErrClosed) {
			return
		}
		n.setGuardErr(ctx, err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, maxListenRetry)
	}
}

// serveOnce listens on the guard port of the mesh addresses and serves
// until the listener fails, the guard closes or ctx ends.
func (n *Node) serveOnce(ctx context.Context) error {
	ln, err := n.member.Engine().Listen("tcp", fmt.Sprintf(":%d", n.cfg.GuardPort))
	if err != nil {
		return fmt.Errorf("guard cannot listen on the mesh (port %d): %w", n.cfg.GuardPort, err)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	n.mu.Lock()
	first := !n.mu.serving
	n.mu.serving = true
	n.mu.Unlock()
	if first {
		n.log.Info("in the mesh: guard listening, serving models", "node", n.st.DeviceID, "addr", ln.Addr(), "models", len(n.cfg.Models))
	} else {
		n.log.Info("guard listening again", "addr", ln.Addr())
	}
	n.setGuardErr(ctx, nil)
	if err := n.guard.Serve(ln); err != nil && !errors.Is(err, guard.ErrClosed) {
		return fmt.Errorf("guard stopped serving on the mesh: %w", err)
	}
	return guard.ErrClosed
}

// setGuardErr records whether the guard listens and, when that changed,
// tells the coordinator: no models while it does not.
func (n *Node) setGuardErr(ctx context.Context, err error) {
	n.mu.Lock()
	was := n.mu.guardErr
	n.mu.guardErr = err
	n.mu.Unlock()
	switch {
	case err != nil && was == nil:
		n.log.Error("guard cannot serve; no longer advertising this node's models", "err", err)
	case err == nil && was != nil:
		n.log.Info("guard serving again; advertising this node's models")
	default:
		return
	}
	if aerr := n.advertise(ctx); aerr != nil && ctx.Err() == nil {
		n.log.Warn("advertise", "err", aerr)
	}
}

// GuardError says why the guard does not listen on the mesh, while it
// does not: the node then advertises no models. It is nil while the guard
// listens and before the first netmap.
func (n *Node) GuardError() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.guardErr
}

// advertisedModels are the models the node advertises now: none while
// the guard cannot serve them.
func (n *Node) advertisedModels() []wire.ModelAd {
	if n.GuardError() != nil {
		return nil
	}
	return n.ads()
}

// setStatus logs when the coordinator connection is lost. A refused
// netmap is not a lost connection; the member logs it.
func (n *Node) setStatus(err error) {
	if errors.Is(err, member.ErrNetMapRefused) {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil && n.mu.status == nil {
		select {
		case <-n.member.Ready():
			n.log.Warn("coordinator connection lost; serving with the last netmap", "err", err)
		default:
			n.log.Warn("cannot reach the coordinator; no netmap yet, so the guard does not listen; retrying", "err", err)
		}
	}
	n.mu.status = err
}
