package netmap

import (
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// hub holds the current netmap of every live device and wakes the streams
// of exactly the devices whose netmap changed.
type hub struct {
	mu struct {
		sync.Mutex
		seq     uint64
		entries map[string]*hubEntry
		subs    map[string]map[*subscriber]struct{}
		order   uint64 // of the newest subscriber
		// dropped remembers when devices were dropped, so that a
		// recompute from an older snapshot cannot bring them back.
		dropped map[string]time.Time
	}
}

// hubEntry is one device's current netmap.
type hubEntry struct {
	seq     uint64
	created time.Time
	frame   *frame
}

// writeTo writes the entry as one NDJSON line.
// relays is the JSON of the netmap's "relays", nil for none.
func (e *hubEntry) writeTo(w io.Writer, relays []byte) error {
	return e.frame.writeTo(w, e.seq, e.created, relays)
}

// subscriber is one open netmap stream. wake is signalled (cap 1) when the
// device's netmap changed or it left the mesh; ended is closed when a
// newer stream of the same device replaced this one.
type subscriber struct {
	wake  chan struct{}
	ended chan struct{}
	order uint64    // when it subscribed, among all streams
	at    time.Time // when it subscribed
}

// MaxStreamsPerDevice is how many netmap streams one device may hold at
// once: its stream, and a new one replacing it across a reconnect. A
// further stream ends the oldest, so streams of one credential cannot
// pile up.
const MaxStreamsPerDevice = 2

func newHub(now time.Time) *hub {
	h := &hub{}
	// Sequence numbers stay increasing across coordinator restarts.
	h.mu.seq = uint64(now.UnixNano())
	h.mu.entries = map[string]*hubEntry{}
	h.mu.subs = map[string]map[*subscriber]struct{}{}
	h.mu.dropped = map[string]time.Time{}
	return h
}

// update installs a new set of netmaps, computed from a snapshot of the
// store read at snapAt for some of the live devices (those with streams
// here), and wakes the streams of the devices whose netmap differs from
// before (ignoring Seq and Created) or that are no longer live. Devices
// dropped after snapAt stay out. A live device whose netmap was not
// computed keeps no entry. A device absent from the snapshot ends its
// streams, unless one began after snapAt (it joined since). It returns the IDs of the devices it woke, and
// whether a live device holding a stream here has no netmap (its stream
// began after the snapshot: another recompute is due).
func (h *hub) update(frames map[string]*frame, live map[string]bool, snapAt, now time.Time) (woken []string, missing bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	stale := h.staleLocked(snapAt)
	for id, f := range frames {
		if stale[id] {
			delete(frames, id)
			continue
		}
		f = withoutPeers(f, stale)
		if old := h.mu.entries[id]; old != nil && old.frame.digest == f.digest {
			continue
		}
		h.mu.seq++
		h.mu.entries[id] = &hubEntry{seq: h.mu.seq, created: now, frame: f}
		woken = append(woken, id)
		h.wakeLocked(id)
	}
	for id := range h.mu.entries {
		if _, ok := frames[id]; ok {
			continue
		}
		delete(h.mu.entries, id)
		if !live[id] || stale[id] { // gone: its streams end
			woken = append(woken, id)
			h.wakeLocked(id)
		}
	}
	for id := range h.mu.subs {
		switch {
		case h.mu.entries[id] != nil:
		case live[id] && !stale[id]:
			missing = true
		case !stale[id] && h.subscribedAfterLocked(id, snapAt):
			// Its stream began after the snapshot was read (a device
			// that joined or signed in since): the snapshot cannot say
			// whether it is live; the next recompute does.
			missing = true
		case !slices.Contains(woken, id): // left before it had a netmap: its streams end
			woken = append(woken, id)
			h.wakeLocked(id)
		}
	}
	return woken, missing
}

// subscribedAfterLocked reports whether device id has a stream that
// began after t.
func (h *hub) subscribedAfterLocked(id string, t time.Time) bool {
	for s := range h.mu.subs[id] {
		if s.at.After(t) {
			return true
		}
	}
	return false
}

// subscribed returns the devices holding a stream here.
func (h *hub) subscribed() map[string]bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]bool, len(h.mu.subs))
	for id := range h.mu.subs {
		out[id] = true
	}
	return out
}

// staleLocked returns the devices dropped after snapAt, forgetting drops
// older than any recompute still in flight could be.
func (h *hub) staleLocked(snapAt time.Time) map[string]bool {
	var stale map[string]bool
	for id, at := range h.mu.dropped {
		switch {
		case time.Since(at) > time.Minute:
			delete(h.mu.dropped, id)
		case at.After(snapAt):
			if stale == nil {
				stale = map[string]bool{}
			}
			stale[id] = true
		}
	}
	return stale
}

// withoutPeers returns f without the peer entries of the given devices.
func withoutPeers(f *frame, gone map[string]bool) *frame {
	if len(gone) == 0 {
		return f
	}
	g := *f
	if len(gone) == 1 { // the usual case, one revocation: a binary search
		for id := range gone {
			i, found := slices.BinarySearchFunc(f.peers, id, func(p *fragment, id string) int { return strings.Compare(p.device, id) })
			if !found {
				return f
			}
			g.peers = slices.Delete(slices.Clone(f.peers), i, i+1)
		}
	} else {
		isGone := func(p *fragment) bool { return gone[p.device] }
		if !slices.ContainsFunc(f.peers, isGone) {
			return f
		}
		g.peers = slices.DeleteFunc(slices.Clone(f.peers), isGone)
	}
	g.seal()
	return &g
}

// drop takes device id out of the mesh at once, ahead of the full
// recompute that follows: its own streams end, and every netmap that
// lists it loses that peer entry. A removed peer stops passing traffic as
// soon as its peers apply this. It returns the devices it woke.
func (h *hub) drop(id string, now time.Time) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.dropped[id] = time.Now()
	woken := []string{}
	old, had := h.mu.entries[id]
	if had || len(h.mu.subs[id]) > 0 {
		delete(h.mu.entries, id)
		woken = append(woken, id)
		h.wakeLocked(id)
	}
	gone := map[string]bool{id: true}
	// Peers see each other: when this replica holds the device's
	// netmap, the netmaps that list it are those of its peers.
	others := h.mu.entries
	if had {
		others = make(map[string]*hubEntry, len(old.frame.peers))
		for _, p := range old.frame.peers {
			if e := h.mu.entries[p.device]; e != nil {
				others[p.device] = e
			}
		}
	}
	for other, e := range others {
		f := withoutPeers(e.frame, gone)
		if f == e.frame {
			continue
		}
		h.mu.seq++
		h.mu.entries[other] = &hubEntry{seq: h.mu.seq, created: now, frame: f}
		woken = append(woken, other)
		h.wakeLocked(other)
	}
	return woken
}

func (h *hub) wakeLocked(id string) {
	for s := range h.mu.subs[id] {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// current returns the device's netmap entry, or nil when it is not (or
// no longer) in the mesh.
func (h *hub) current(id string) *hubEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.entries[id]
}

// subscribe registers a stream for device id, ending its oldest stream
// when it already holds MaxStreamsPerDevice; call the returned func to
// unregister it.
func (h *hub) subscribe(id string) (*subscriber, func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.order++
	s := &subscriber{wake: make(chan struct{}, 1), ended: make(chan struct{}), order: h.mu.order, at: time.Now()}
	if h.mu.subs[id] == nil {
		h.mu.subs[id] = map[*subscriber]struct{}{}
	}
	for len(h.mu.subs[id]) >= MaxStreamsPerDevice {
		h.endOldestLocked(id)
	}
	h.mu.subs[id][s] = struct{}{}
	return s, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.unsubscribeLocked(id, s)
	}
}

// endOldestLocked ends and unregisters device id's oldest stream.
func (h *hub) endOldestLocked(id string) {
	var oldest *subscriber
	for s := range h.mu.subs[id] {
		if oldest == nil || s.order < oldest.order {
			oldest = s
		}
	}
	close(oldest.ended)
	h.unsubscribeLocked(id, oldest)
}

func (h *hub) unsubscribeLocked(id string, s *subscriber) {
	delete(h.mu.subs[id], s)
	if len(h.mu.subs[id]) == 0 {
		delete(h.mu.subs, id)
	}
}

// streams returns how many netmap streams are open, for metrics.
func (h *hub) streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.mu.subs {
		n += len(s)
	}
	return n
}
