package node

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// A node's credential expires; two thirds into its lifetime the node asks
// the coordinator for the next one, saves it, and sends it from then on.
// The coordinator keeps the previous one working for an overlap, so that
// requests in flight with it (the netmap stream, an audit batch, a budget
// lease) finish: no request fails during a rotation. A failed renewal is
// tried again every renewRetry until the credential expires.

// renewRetry is how soon a failed renewal is tried again.
const renewRetry = time.Minute

// minRenewWait keeps a very short credential lifetime (tests) from
// renewing in a busy loop.
const minRenewWait = time.Second

// startRenew starts renewing the credential of ctl; Close stops it.
func (n *Node) startRenew(ctl *control.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	n.stopRenew = cancel
	r := &renewer{st: n.st, dir: n.cfg.StateDir, log: n.log}
	n.renewWG.Go(func() { r.loop(ctx, ctl) })
}

// renewer renews a node's credential, keeping it in the node's state.
type renewer struct {
	st  *state
	dir string // where the state is saved
	log *slog.Logger
}

// loop renews when due until ctx ends or the coordinator says it does
// not rotate node credentials.
func (n *renewer) loop(ctx context.Context, ctl *control.Client) {
	wait := n.firstRenewWait()
	for {
		if wait < 0 {
			return // the credential never expires
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		var err error
		wait, err = n.renewCredential(ctx, ctl)
		var ce *control.Error
		switch {
		case errors.As(err, &ce) && ce.Status == http.StatusNotFound:
			n.log.Info("the coordinator does not rotate node credentials (an older version); keeping this one")
			return
		case err != nil && ctx.Err() == nil:
			wait = n.retryWait()
			n.log.Warn("renew the node credential; trying again", "in", wait, "err", err)
		}
	}
}

// retryWait is how soon to try a failed renewal again: renewRetry, but
// at most a third of the credential's remaining life, so that a short
// one gets several tries before it expires.
func (n *renewer) retryWait() time.Duration {
	if n.st.CredentialExpiry.IsZero() {
		return renewRetry
	}
	return min(renewRetry, max(time.Until(n.st.CredentialExpiry)/3, minRenewWait))
}

// firstRenewWait is how long to wait before the first renewal: at once
// for a credential whose lifetime the node does not know (joined before
// credentials expired, or by an older node), else until two thirds into
// its lifetime by this host's clock, but never longer than two thirds of
// its lifetime (a coordinator clock ahead of this host's) nor less than
// nothing (one behind, or a node that was down).
func (n *renewer) firstRenewWait() time.Duration {
	c := wire.NodeCredential{Issued: n.st.CredentialIssued, Expiry: n.st.CredentialExpiry}
	if c.Expiry.IsZero() {
		return 0
	}
	return min(max(time.Until(c.RenewAt()), 0), max(c.Expiry.Sub(c.Issued)*2/3, minRenewWait))
}

// renewCredential gets, saves and starts using the next credential, and
// returns how long until the one after it is due (-1: never).
func (n *renewer) renewCredential(ctx context.Context, ctl *control.Client) (time.Duration, error) {
	res, err := ctl.RenewNodeCredential(ctx)
	if err != nil {
		return 0, err
	}
	n.st.Credential, n.st.CredentialIssued, n.st.CredentialExpiry = res.Credential, res.Issued, res.Expiry
	if err := n.st.save(n.dir); err != nil {
		// Sent from now on all the same: the previous one stops working
		// after the overlap either way. A restart before the next
		// successful save needs the node joined again.
		n.log.Error("save the node's new credential", "err", err)
	}
	ctl.SetCredential(res.Credential)
	n.log.Info("node credential rotated", "expires", res.Expiry)
	if res.Expiry.IsZero() {
		return -1, nil
	}
	// Measured from now on this host, so that a clock skew with the
	// coordinator does not matter.
	return max(res.Expiry.Sub(res.Issued)*2/3, minRenewWait), nil
}
