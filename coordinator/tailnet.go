package coordinator

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/netmap"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
)

// Nodes on a Tailscale or Headscale tailnet enrolled here hold a tailnet
// stream (POST /api/v1/tailnet, wire.TailnetMap) instead of a netmap
// stream: their rules and the people and tags their tailnet callers may
// be. Each recompute of the netmaps (a policy save, a person disabled, a
// device revoked, the resync) wakes every tailnet stream, which computes
// its map from the new snapshot and sends it when it changed.

// tailnetHeartbeat is as the netmap stream's.
const tailnetHeartbeat = 25 * time.Second

// maxTailnetStreams is how many tailnet streams one node may hold at
// once (its stream, and a new one across a reconnect; a further one ends
// the oldest): each costs a policy compile at every recompute.
const maxTailnetStreams = 2

// tailnetHub holds the newest snapshot and wakes the tailnet streams.
type tailnetHub struct {
	mu    sync.Mutex
	snap  *netmap.Snapshot
	subs  map[*tailnetSub]struct{}
	order uint64 // of the newest stream
}

// tailnetSub is one open tailnet stream: wake is signalled (cap 1) after
// every recompute, ended closed when a newer stream of the node replaced
// it.
type tailnetSub struct {
	node  string
	order uint64
	wake  chan struct{}
	ended chan struct{}
}

// updated installs a recompute's snapshot and wakes every stream.
func (h *tailnetHub) updated(s *netmap.Snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.snap = s
	for sub := range h.subs {
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}

// subscribe registers a stream of node id, ending its oldest when it
// already holds maxTailnetStreams; call the returned func to unregister
// it.
func (h *tailnetHub) subscribe(id string) (*tailnetSub, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[*tailnetSub]struct{}{}
	}
	var mine []*tailnetSub
	for sub := range h.subs {
		if sub.node == id {
			mine = append(mine, sub)
		}
	}
	slices.SortFunc(mine, func(a, b *tailnetSub) int { return cmp.Compare(a.order, b.order) })
	for _, old := range mine[:max(0, len(mine)-maxTailnetStreams+1)] {
		close(old.ended)
		delete(h.subs, old)
	}
	h.order++
	sub := &tailnetSub{node: id, order: h.order, wake: make(chan struct{}, 1), ended: make(chan struct{})}
	h.subs[sub] = struct{}{}
	return sub, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, sub)
	}
}

func (h *tailnetHub) latest() *netmap.Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snap
}

// netmapsUpdated runs after every recompute of the netmaps.
func (s *Server) netmapsUpdated(ctx context.Context, snap *netmap.Snapshot) {
	s.retainRelay(ctx, snap)
	s.tailnets.updated(snap)
}

// tailnetOptions are what the organisation lets tailnet nodes map; the
// zero value (the default) refuses their streams.
func (s *Server) tailnetOptions() netmap.TailnetOptions {
	return netmap.TailnetOptions{Logins: s.cfg.TailnetLogins, Tags: s.cfg.TailnetTags}
}

// tailnetStream serves a node's tailnet stream: POST /api/v1/tailnet.
func (s *Server) tailnetStream(c *gin.Context) {
	d := device(c)
	opt := s.tailnetOptions()
	switch {
	case d.Kind != store.KindNode:
		apiError(c, http.StatusForbidden, "not_a_node", "only nodes hold a tailnet stream")
		return
	case !opt.Logins && len(opt.Tags) == 0:
		apiError(c, http.StatusForbidden, wire.CodeTailnetOff, "this coordinator does not map tailnet callers to people; an admin turns it on with --tailnet-logins (or names tailnet tags with --tailnet-tags), see docs/tailnet.md")
		return
	}
	var req wire.TailnetRequest
	if !decode(c, limitSmall, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		apiError(c, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	sub, unsubscribe := s.tailnets.subscribe(d.ID)
	defer unsubscribe()
	snap := s.tailnets.latest()
	if snap == nil {
		var err error
		if snap, err = s.netmaps.Snapshot(c.Request.Context()); err != nil {
			s.internal(c, "tailnet map", err)
			return
		}
	}
	t := &tailnetSender{w: c.Writer, rc: http.NewResponseController(c.Writer), seq: uint64(time.Now().UnixNano())}
	c.Header("Content-Type", "application/x-ndjson")
	c.Header("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	s.serveTailnet(c.Request, d.ID, req.Models, opt, snap, sub, t)
}

// serveTailnet sends node id's tailnet map from snap, then after every
// wake when it changed, until the request ends, the node leaves the mesh
// (the stream ends: the next request learns why), its credential stops
// admitting it, a newer stream replaces this one, or a write fails.
func (s *Server) serveTailnet(r *http.Request, id string, models []wire.ModelAd, opt netmap.TailnetOptions, snap *netmap.Snapshot, sub *tailnetSub, t *tailnetSender) {
	ctx := r.Context()
	credHash := hashSecret(bearer(r))
	tick := time.NewTicker(tailnetHeartbeat)
	defer tick.Stop()
	s.touchNode(id)
	for {
		node := liveDevice(snap, id)
		if node == nil {
			// A recompute's snapshot may predate the node (it joined
			// while one ran): only the store read now says it left.
			var err error
			if snap, err = s.netmaps.Snapshot(ctx); err != nil {
				s.log.Warn("tailnet map", "node", id, "err", err)
				return
			}
			if node = liveDevice(snap, id); node == nil {
				return
			}
		}
		m, err := snap.Tailnet(node, models, opt)
		if err != nil {
			s.log.Error("tailnet map", "node", id, "err", err)
			return
		}
		if !t.send(m) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if !s.stillValid(ctx, id, credHash) || !t.heartbeat() {
				return
			}
			s.touchNode(id)
		case <-sub.ended:
			return
		case <-sub.wake:
		}
		snap = s.tailnets.latest()
	}
}

// liveDevice is device id of snap while it is live, else nil.
func liveDevice(snap *netmap.Snapshot, id string) *store.Device {
	for _, d := range snap.Devices {
		if d.ID == id && snap.Live(d) {
			return d
		}
	}
	return nil
}

// touchNode records that the node was seen, as its netmap stream would.
func (s *Server) touchNode(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.store.TouchDevice(ctx, id, s.cfg.Now()); err != nil {
		s.log.Debug("touch node", "node", id, "err", err)
	}
}

// tailnetSender writes a tailnet stream: each map once, when it differs
// from the last one sent (apart from Seq and Created).
type tailnetSender struct {
	w    http.ResponseWriter
	rc   *http.ResponseController
	seq  uint64
	last [sha256.Size]byte
	sent bool
}

func (t *tailnetSender) send(m *wire.TailnetMap) bool {
	b, err := json.Marshal(m)
	if err != nil {
		return false
	}
	sum := sha256.Sum256(b)
	if t.sent && sum == t.last {
		return true
	}
	t.last, t.sent = sum, true
	t.seq++
	m.Seq, m.Created = t.seq, time.Now()
	if b, err = json.Marshal(m); err != nil {
		return false
	}
	return t.write(append(b, '\n'))
}

func (t *tailnetSender) heartbeat() bool { return t.write([]byte("\n")) }

func (t *tailnetSender) write(b []byte) bool {
	t.rc.SetWriteDeadline(time.Now().Add(15 * time.Second))
	_, err := t.w.Write(b)
	return err == nil && t.rc.Flush() == nil
}
