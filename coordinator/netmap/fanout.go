// Package netmap computes every device's netmap and fans it out: from a
// snapshot of the store and the policy in force it compiles who may reach
// whom, encodes each device's netmap (sharing the encoding of peers seen
// the same way by many devices, and keeping what did not change from one
// recompute to the next: see encode.go), and wakes the streams of exactly
// the devices whose netmap changed. A Fanout recomputes when told that
// something changed (here, or on another replica: see replicas.go), when
// a device key expires, and every Resync as a safety net.
package netmap

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// Store is what the fan-out reads from the coordinator's store, and what
// it writes: when a device was last seen on its stream, and which streams
// are open on which replica (see store/presence.go).
type Store interface {
	Devices(ctx context.Context) ([]*store.Device, error)
	// DevicesAnyOrder is Devices in any order (the recompute sorts).
	DevicesAnyOrder(ctx context.Context) ([]*store.Device, error)
	// DeviceVersions and DevicesFrom let a recompute read only the
	// devices written since the last (see devices.go).
	DeviceVersions(ctx context.Context) ([]store.DeviceVersion, error)
	DevicesFrom(ctx context.Context, from int64) ([]store.VersionedDevice, error)
	Users(ctx context.Context) ([]*store.User, error)
	PersonKeys(ctx context.Context) ([]*store.PersonKey, error)
	TouchDevice(ctx context.Context, id string, seen time.Time) error

	OpenNetmapStream(ctx context.Context, id, deviceID, replica string, now time.Time) error
	CloseNetmapStream(ctx context.Context, id string) error
	TouchNetmapStreams(ctx context.Context, replica string, now, before time.Time) error
	CloseReplicaStreams(ctx context.Context, replica string) error
	OnlineDevices(ctx context.Context, since time.Time) (map[string]bool, error)
}

// Policies is what the fan-out needs from the coordinator around it.
type Policies interface {
	// PolicyInForce returns the policy in force, never nil. It is called
	// before every recompute and may first pick up a policy another
	// replica saved; if that fails, it logs the failure and returns the
	// policy it had.
	PolicyInForce(ctx context.Context) *policy.Policy
}

// Config configures a Fanout. Store and Policies are required.
type Config struct {
	Store    Store
	Policies Policies
	// Now is the clock for expiries and timestamps; nil is time.Now.
	Now func() time.Time
	// Logger receives recompute errors and debug lines; nil discards.
	Logger *slog.Logger
	// Resync is the longest time between two recomputes, a safety net
	// for a change whose message was lost; 0 is 30 seconds.
	Resync time.Duration
	// Bus carries changes to and from the other replicas sharing Store
	// (PostgreSQL). Nil means this process is the only one (SQLite).
	Bus Bus
	// Updated, when set, is called with the snapshot of each successful
	// recompute, on the recompute's goroutine (the coordinator cuts
	// members no longer live off its relay). Default: none.
	Updated func(context.Context, *Snapshot)
	// Relays are named in every netmap (wire.NetMap.Relays), the same for
	// every member. Default: none (members use the coordinator's own).
	Relays []wire.Relay
}

// DefaultResync is Config.Resync's default.
const DefaultResync = 30 * time.Second

// Fanout keeps every live device's netmap current and serves the
// streams. Close stops it.
type Fanout struct {
	cfg     Config
	relays  []byte // Config.Relays as JSON; nil for none
	hub     *hub
	enc     *encoding     // kept between recomputes
	devs    deviceCache   // kept between recomputes
	replica string        // this replica's random id, in messages and presence rows
	poke    chan struct{} // cap 1: recompute soon
	publish chan struct{} // cap 1: the outbox has something
	touched chan struct{} // cap 1: a device was seen (see streamwrites.go)
	// presenceNoted (cap 1): a stream opened or ended (see streamwrites.go).
	presenceNoted chan struct{}
	stopped       <-chan struct{} // closed by Close
	stop          context.CancelFunc
	wg            sync.WaitGroup
	recompute     prometheus.Histogram
	streams       prometheus.GaugeFunc

	mu struct {
		sync.Mutex
		nextExpiry time.Time
		out        outbox
		seen       map[string]time.Time // devices seen, not yet written (see streamwrites.go)
		presence   []presenceOp         // presence rows not yet written
	}
}

// New computes the first netmaps and starts the goroutine that keeps
// them current.
func New(ctx context.Context, cfg Config) (*Fanout, error) {
	if cfg.Store == nil || cfg.Policies == nil {
		return nil, errors.New("netmap: Store and Policies are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Resync == 0 {
		cfg.Resync = DefaultResync
	}
	f := &Fanout{cfg: cfg, hub: newHub(cfg.Now()), enc: newEncoding(), replica: store.NewID("r_"),
		poke: make(chan struct{}, 1), publish: make(chan struct{}, 1), touched: make(chan struct{}, 1),
		presenceNoted: make(chan struct{}, 1)}
	if len(cfg.Relays) > 0 {
		var err error
		if f.relays, err = json.Marshal(cfg.Relays); err != nil {
			return nil, fmt.Errorf("netmap: relays: %w", err)
		}
	}
	f.recompute = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "moat_coordinator_netmap_recompute_seconds", Help: "Time to recompute every netmap.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	f.streams = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "moat_coordinator_netmap_streams", Help: "Open netmap streams.",
	}, func() float64 { return float64(f.hub.streams()) })
	if err := f.update(ctx); err != nil {
		return nil, err
	}
	loopCtx, stop := context.WithCancel(context.Background())
	f.stop, f.stopped = stop, loopCtx.Done()
	f.wg.Add(4)
	go f.loop(loopCtx)
	go f.presence(loopCtx)
	go f.presenceWriter(loopCtx)
	go f.toucher(loopCtx)
	if cfg.Bus != nil {
		f.wg.Add(2)
		go f.publisher(loopCtx)
		go f.listener(loopCtx)
	}
	return f, nil
}

// Close stops the recompute loop and the replica machinery, and forgets
// this replica's streams in the store. Open streams end with their
// requests.
func (f *Fanout) Close() {
	f.stop()
	f.wg.Wait()
}

// Collectors are the fan-out's metrics: recompute times and open streams.
func (f *Fanout) Collectors() []prometheus.Collector {
	return []prometheus.Collector{f.recompute, f.streams}
}

// Changed asks every replica for a recompute soon: call it after
// committing a change that may alter netmaps. Changes that arrive while
// one runs are folded into the next.
func (f *Fanout) Changed() {
	f.recomputeSoon()
	f.enqueue(true, "")
}

// Recheck recomputes this replica's netmaps soon, without telling the
// others: nothing in the store changed, but time may have moved past an
// expiry.
func (f *Fanout) Recheck() { f.recomputeSoon() }

// recomputeSoon asks this replica for a recompute soon.
func (f *Fanout) recomputeSoon() {
	select {
	case f.poke <- struct{}{}:
	default:
	}
}

// Drop takes device id out of the mesh at once, ahead of the recompute
// that Changed asks for: its own streams end, and every netmap that lists
// it loses that peer. Other replicas do the same as soon as they hear.
func (f *Fanout) Drop(id string) {
	f.hub.drop(id, f.cfg.Now())
	f.enqueue(false, id)
}

// Snapshot reads the mesh from the store, with the policy in force.
func (f *Fanout) Snapshot(ctx context.Context) (*Snapshot, error) {
	return f.snapshot(ctx, f.cfg.Store.Devices)
}

// sortedDevices reads every device, only those written since the last
// recompute from the store (see devices.go), and orders them as
// Store.Devices does: by creation, then ID. Sorting pointers here costs
// less than the database's sort of whole rows. For the recompute only:
// the devices are shared between recomputes.
func (f *Fanout) sortedDevices(ctx context.Context) ([]*store.Device, error) {
	ds, err := f.devs.read(ctx, f.cfg.Store)
	slices.SortFunc(ds, func(a, b *store.Device) int { return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID)) })
	return ds, err
}

// snapshot reads the mesh, its devices with devices.
func (f *Fanout) snapshot(ctx context.Context, devices func(context.Context) ([]*store.Device, error)) (*Snapshot, error) {
	ds, err := devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	users, err := f.cfg.Store.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	s := &Snapshot{Devices: ds, Users: make(map[string]*store.User, len(users)), Now: f.cfg.Now()}
	for _, u := range users {
		s.Users[u.ID] = u
	}
	keys, err := f.cfg.Store.PersonKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list prompt keys: %w", err)
	}
	s.PromptKeys = make(map[string][]byte, len(keys))
	for _, k := range keys {
		if len(k.Public) > 0 {
			s.PromptKeys[k.UserID] = k.Public
		}
	}
	s.Policy = f.cfg.Policies.PolicyInForce(ctx)
	return s, nil
}

// loop recomputes when poked, when a device key expires, and every
// Resync.
func (f *Fanout) loop(ctx context.Context) {
	defer f.wg.Done()
	t := time.NewTimer(f.cfg.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.poke:
		case <-t.C:
		}
		if err := f.update(ctx); err != nil && ctx.Err() == nil {
			f.cfg.Logger.Error("recompute netmaps", "err", err)
		}
		t.Reset(f.untilNextWake())
	}
}

func (f *Fanout) untilNextWake() time.Duration {
	f.mu.Lock()
	next := f.mu.nextExpiry
	f.mu.Unlock()
	if next.IsZero() {
		return f.cfg.Resync
	}
	return min(f.cfg.Resync, max(next.Sub(f.cfg.Now()), 0)+time.Millisecond)
}

// update reads the mesh, compiles the policy and hands the hub the new
// netmaps of the devices streaming from this replica (each replica
// encodes only its share); only devices whose netmap changed are woken.
func (f *Fanout) update(ctx context.Context) error {
	start := time.Now() // also the snapshot's time, for the hub's drops
	want := f.hub.subscribed()
	s, err := f.snapshot(ctx, f.sortedDevices)
	if err != nil {
		return err
	}
	frames, live, next, err := f.enc.frames(s, want)
	if err != nil {
		return err
	}
	woken, missing := f.hub.update(frames, live, start, s.Now)
	if f.cfg.Updated != nil {
		f.cfg.Updated(ctx, s)
	}
	if missing {
		f.recomputeSoon() // for streams that began meanwhile
	}
	f.mu.Lock()
	f.mu.nextExpiry = next
	f.mu.Unlock()
	f.recompute.Observe(time.Since(start).Seconds())
	if len(woken) > 0 {
		f.cfg.Logger.Debug("netmaps updated", "devices", len(frames), "changed", len(woken), "took", time.Since(start))
	}
	return nil
}
