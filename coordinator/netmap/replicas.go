package netmap

import (
	"context"
	"strings"
	"time"
)

// Replicas. Every replica serves the streams of the devices connected to
// it and recomputes their netmaps from the shared store. A change made on
// one replica reaches the others as a message on the Bus, published right
// after the change is committed: "changed" asks every replica to
// recompute, "drop ID" takes a device out of every replica's netmaps at
// once (ending its streams), ahead of that recompute. A replica whose
// listening connection dropped recomputes as soon as it listens again,
// since it may have missed messages; the periodic recompute (Resync)
// remains only as a safety net.

// Bus carries messages between the replicas sharing a store (PostgreSQL's
// LISTEN/NOTIFY: store.Bus).
type Bus interface {
	// Publish sends msg to every replica listening, this one included.
	Publish(ctx context.Context, msg string) error
	// Listen calls listening once messages will be received, then
	// delivers them until ctx ends (nil) or the connection fails (its
	// error); the caller listens again after a pause.
	Listen(ctx context.Context, listening func(), deliver func(msg string)) error
}

// Message kinds on the Bus; a message is "REPLICA KIND [DEVICE]".
const (
	msgChanged = "changed"
	msgDrop    = "drop"
)

// Timing of the replica machinery.
const (
	publishTimeout = 5 * time.Second
	relistenAfter  = time.Second // after a lost listening connection
	// presenceBeat is how often a replica marks its streams seen;
	// presenceStale is when a stream not marked since counts as gone
	// (its replica stopped without saying so), and presenceForget when
	// its row is deleted (later, so that a replica whose clock is a
	// little ahead does not delete the live rows of another). Stamps are
	// the replica's real clock: presence is about connections, not the
	// mesh's clock (Config.Now).
	presenceBeat   = 10 * time.Second
	presenceStale  = 3 * presenceBeat
	presenceForget = 5 * time.Minute
)

// outbox holds what this replica has yet to tell the others: whether
// something changed, and the devices to drop. Publishing runs in its own
// goroutine so that callers of Changed and Drop never wait for the
// database; changes that pile up meanwhile go out as one message.
type outbox struct {
	changed bool
	drops   []string
}

func (f *Fanout) enqueue(change bool, drop string) {
	if f.cfg.Bus == nil {
		return
	}
	f.mu.Lock()
	f.mu.out.changed = f.mu.out.changed || change
	if drop != "" {
		f.mu.out.drops = append(f.mu.out.drops, drop)
	}
	f.mu.Unlock()
	select {
	case f.publish <- struct{}{}:
	default:
	}
}

// publisher sends the outbox whenever something is in it.
func (f *Fanout) publisher(ctx context.Context) {
	defer f.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.publish:
		}
		f.mu.Lock()
		out := f.mu.out
		f.mu.out = outbox{}
		f.mu.Unlock()
		var msgs []string
		for _, id := range out.drops {
			msgs = append(msgs, f.replica+" "+msgDrop+" "+id)
		}
		if out.changed {
			msgs = append(msgs, f.replica+" "+msgChanged)
		}
		for _, m := range msgs {
			pctx, cancel := context.WithTimeout(ctx, publishTimeout)
			if err := f.cfg.Bus.Publish(pctx, m); err != nil && ctx.Err() == nil {
				// The others catch up at their next Resync.
				f.cfg.Logger.Error("tell other replicas", "err", err)
			}
			cancel()
		}
	}
}

// listener receives the other replicas' messages, listening again after
// a lost connection (and then recomputing: messages may have been lost).
func (f *Fanout) listener(ctx context.Context) {
	defer f.wg.Done()
	for {
		err := f.cfg.Bus.Listen(ctx, f.recomputeSoon, f.deliver)
		if ctx.Err() != nil {
			return
		}
		f.cfg.Logger.Warn("listening for other replicas' changes failed; listening again", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(relistenAfter):
		}
	}
}

// deliver applies a message from another replica.
func (f *Fanout) deliver(msg string) {
	from, rest, _ := strings.Cut(msg, " ")
	if from == f.replica {
		return // applied when it was sent
	}
	kind, id, _ := strings.Cut(rest, " ")
	switch kind {
	case msgDrop:
		f.hub.drop(id, f.cfg.Now())
	case msgChanged:
	default:
		f.cfg.Logger.Warn("unknown message from another replica", "kind", kind)
	}
	f.recomputeSoon()
}

// presence marks this replica's streams seen every presenceBeat.
func (f *Fanout) presence(ctx context.Context) {
	defer f.wg.Done()
	t := time.NewTicker(presenceBeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done(): // presenceWriter forgets the streams
			return
		case <-t.C:
		}
		now := time.Now()
		tctx, cancel := context.WithTimeout(ctx, touchTimeout)
		if err := f.cfg.Store.TouchNetmapStreams(tctx, f.replica, now, now.Add(-presenceForget)); err != nil && ctx.Err() == nil {
			f.cfg.Logger.Warn("mark netmap streams seen", "err", err)
		}
		cancel()
	}
}

// Online returns the devices holding a netmap stream now, on any replica.
func (f *Fanout) Online(ctx context.Context) (map[string]bool, error) {
	return f.cfg.Store.OnlineDevices(ctx, time.Now().Add(-presenceStale))
}
