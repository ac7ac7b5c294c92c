package coordinator

import (
	"crypto/sha256"
	"encoding/json"
	"sync"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// hub holds the current netmap of every live device and wakes the streams
// of exactly the devices whose netmap changed.
type hub struct {
	mu struct {
		sync.Mutex
		seq     uint64
		entries map[string]*hubEntry
		subs    map[string]map[*subscriber]struct{}
	}
}

// hubEntry is one device's current netmap, encoded once for all of the
// device's streams.
type hubEntry struct {
	seq    uint64
	line   []byte // the netmap as one NDJSON line
	digest [sha256.Size]byte
}

// subscriber is one open netmap stream. wake is signalled (cap 1) when the
// device's netmap changed or it left the mesh.
type subscriber struct{ wake chan struct{} }

func newHub(now time.Time) *hub {
	h := &hub{}
	// Sequence numbers stay increasing across coordinator restarts.
	h.mu.seq = uint64(now.UnixNano())
	h.mu.entries = map[string]*hubEntry{}
	h.mu.subs = map[string]map[*subscriber]struct{}{}
	return h
}

// update installs a new set of netmaps and wakes the streams of the
// devices whose netmap differs from before (ignoring Seq and Created) or
// that are gone. It returns the IDs of the devices it woke.
func (h *hub) update(maps map[string]*wire.NetMap, now time.Time) ([]string, error) {
	digests := make(map[string][sha256.Size]byte, len(maps))
	for id, nm := range maps {
		d, err := digest(nm)
		if err != nil {
			return nil, err
		}
		digests[id] = d
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var woken []string
	for id, nm := range maps {
		if old := h.mu.entries[id]; old != nil && old.digest == digests[id] {
			continue
		}
		h.mu.seq++
		nm.Seq, nm.Created = h.mu.seq, now.UTC()
		line, err := json.Marshal(nm)
		if err != nil {
			return woken, err
		}
		h.mu.entries[id] = &hubEntry{seq: nm.Seq, line: append(line, '\n'), digest: digests[id]}
		woken = append(woken, id)
		h.wakeLocked(id)
	}
	for id := range h.mu.entries {
		if _, ok := maps[id]; !ok {
			delete(h.mu.entries, id)
			woken = append(woken, id)
			h.wakeLocked(id)
		}
	}
	return woken, nil
}

func digest(nm *wire.NetMap) ([sha256.Size]byte, error) {
	seq, created := nm.Seq, nm.Created
	nm.Seq, nm.Created = 0, time.Time{}
	b, err := json.Marshal(nm)
	nm.Seq, nm.Created = seq, created
	return sha256.Sum256(b), err
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

// subscribe registers a stream for device id; call the returned func to
// unregister it.
func (h *hub) subscribe(id string) (*subscriber, func()) {
	s := &subscriber{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.subs[id] == nil {
		h.mu.subs[id] = map[*subscriber]struct{}{}
	}
	h.mu.subs[id][s] = struct{}{}
	return s, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.mu.subs[id], s)
		if len(h.mu.subs[id]) == 0 {
			delete(h.mu.subs, id)
		}
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
