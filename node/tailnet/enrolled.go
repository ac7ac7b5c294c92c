package tailnet

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// A node enrolled at a coordinator (Config.Coordinator) enforces what the
// coordinator's tailnet stream says (wire.TailnetMap) instead of a local
// policy: a caller whose tailnet login is a person's email there is that
// person, with the groups and access the coordinator gives them; a
// tagged tailnet device is the tags of it the coordinator maps; anyone
// else is refused. Each new map applies at once, to the callers already
// known too.

// Bounds of the wait before opening the tailnet stream again.
const (
	minFollowRetry = 500 * time.Millisecond
	maxFollowRetry = 30 * time.Second
)

// follow holds the coordinator's tailnet stream until ctx ends. When the
// coordinator refuses the node (its credential, or tailnet mapping turned
// off) the node serves nobody until it is accepted again; a coordinator
// it cannot reach leaves the last map in force.
func (n *Node) follow(ctx context.Context) {
	req := wire.TailnetRequest{Models: n.ads()}
	wait := minFollowRetry
	for ctx.Err() == nil {
		err := n.coord.Control().TailnetStream(ctx, req, func(m *wire.TailnetMap) error {
			wait = minFollowRetry
			return n.table.setView(m)
		})
		if ctx.Err() != nil {
			return
		}
		if refused(err) {
			n.log.Error("the coordinator refuses this node its policy; serving nobody", "err", err)
			if err := n.table.setView(nil); err != nil {
				n.log.Error("tailnet: clear the policy", "err", err)
			}
		} else if err != nil {
			n.log.Warn("coordinator stream ended; serving with the last policy", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait/2 + rand.N(wait/2+1)):
		}
		wait = min(2*wait, maxFollowRetry)
	}
}

// refused reports whether the coordinator refused the node (rather than
// being unreachable).
func refused(err error) bool {
	var ce *control.Error
	return errors.As(err, &ce) && (ce.Status == http.StatusUnauthorized || ce.Status == http.StatusForbidden)
}

// ads are the models the node serves, as the coordinator is told.
func (n *Node) ads() []wire.ModelAd {
	out := make([]wire.ModelAd, 0, len(n.cfg.Models))
	for _, m := range n.cfg.Models {
		out = append(out, wire.ModelAd{Name: m.Name, SHA256: m.SHA256, API: m.Upstream.Kind})
	}
	return out
}

// setView installs the coordinator's newest map (nil: none, refusing
// everyone) and applies it.
func (t *callers) setView(m *wire.TailnetMap) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.view, t.mu.people = m, nil
	if m != nil {
		t.mu.people = make(map[string]int, len(m.People))
		for i, p := range m.People {
			t.mu.people[p.Identity.Login] = i
		}
	}
	return t.applyLocked()
}

// viewNetmapLocked is the guard's netmap under the coordinator's map:
// the callers it names, with the access it gives them.
func (t *callers) viewNetmapLocked() *wire.NetMap {
	t.mu.seq++
	nm := &wire.NetMap{Version: wire.Version, Seq: t.mu.seq, Created: time.Now(), Self: t.mu.self}
	if t.mu.view == nil {
		return nm
	}
	nm.Rules = t.mu.view.Rules
	for _, c := range t.mu.peers {
		if id, access, ok := t.resolveLocked(c); ok {
			nm.Peers = append(nm.Peers, wire.Peer{Key: key.PublicFromRaw(c.key.Raw32()), Addresses: c.addrs, Identity: id, Access: access})
		}
	}
	return nm
}

// resolveLocked is who c is under the coordinator's map, and what it may
// use: the person of its login, or the mapped ones of its tags.
func (t *callers) resolveLocked(c *caller) (wire.Identity, []wire.ModelAccess, bool) {
	id := wire.Identity{DeviceID: c.id.DeviceID, DeviceName: c.id.DeviceName, Expiry: c.id.Expiry}
	if len(c.id.Tags) > 0 {
		var access []wire.ModelAccess
		for _, tag := range t.mu.view.Tags {
			if slices.Contains(c.id.Tags, tag.Tag) {
				id.Tags = append(id.Tags, tag.Tag)
				access = append(access, tag.Access...)
			}
		}
		return id, access, len(id.Tags) > 0
	}
	i, ok := t.mu.people[c.id.Login]
	if !ok || c.id.Login == "" {
		return id, nil, false
	}
	p := t.mu.view.People[i]
	id.UserID, id.Login, id.Name, id.Groups, id.Admin, id.PromptKey = p.Identity.UserID, p.Identity.Login, p.Identity.Name, p.Identity.Groups, p.Identity.Admin, p.Identity.PromptKey
	return id, p.Access, true
}
