package netmap

import (
	"context"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// The streams' writes to the store: presence rows (a stream opened or
// ended, see replicas.go) and when a device was last seen. Two goroutines
// write them for the streams, so that the streams' goroutines never run
// the store's deep call stacks (10,000 stacks grown, then shrunk by the
// garbage collector cycle after cycle).
//
// Presence rows are written in order; a stream waits for its own row
// before its first netmap, as when it wrote it itself. Last-seen times are
// written at most touchBurst rows every touchPause, so that a reconnect of
// every device (a coordinator restart) does not compete with the first
// recomputes: LastSeen is only shown to admins (online status comes from
// presence), so a late write costs nothing.
const (
	touchBurst = 50
	touchPause = 100 * time.Millisecond
)

// presenceOp is a presence row to write: a stream opened, or ended.
// done, for an opening, is closed once it is written.
type presenceOp struct {
	open           bool
	stream, device string
	at             time.Time
	done           chan struct{}
}

// present records that device id holds a stream on this replica, until
// the returned func is called. It returns once the row is written, or
// ctx or the fan-out ended.
func (f *Fanout) present(ctx context.Context, id string) (gone func()) {
	stream := store.NewID("s_")
	op := presenceOp{open: true, stream: stream, device: id, at: time.Now(), done: make(chan struct{})}
	f.notePresence(op)
	select {
	case <-op.done:
	case <-ctx.Done():
	case <-f.stopped:
	}
	return func() { f.notePresence(presenceOp{stream: stream}) }
}

func (f *Fanout) notePresence(op presenceOp) {
	f.mu.Lock()
	f.mu.presence = append(f.mu.presence, op)
	f.mu.Unlock()
	select {
	case f.presenceNoted <- struct{}{}:
	default:
	}
}

// presenceWriter writes the presence rows noted, in order, until ctx
// ends; then it forgets this replica's streams in the store. A failure is
// logged and the stream goes on: presence is shown to admins, never used
// to decide access.
func (f *Fanout) presenceWriter(ctx context.Context) {
	defer f.wg.Done()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), touchTimeout)
			defer cancel()
			if err := f.cfg.Store.CloseReplicaStreams(dctx, f.replica); err != nil {
				f.cfg.Logger.Warn("forget this replica's streams", "err", err)
			}
			return
		case <-f.presenceNoted:
		}
		f.mu.Lock()
		ops := f.mu.presence
		f.mu.presence = nil
		f.mu.Unlock()
		f.writePresence(ctx, ops)
	}
}

func (f *Fanout) writePresence(ctx context.Context, ops []presenceOp) {
	for _, op := range ops {
		wctx, cancel := context.WithTimeout(ctx, touchTimeout)
		var err error
		if op.open {
			err = f.cfg.Store.OpenNetmapStream(wctx, op.stream, op.device, f.replica, op.at)
			close(op.done)
		} else {
			err = f.cfg.Store.CloseNetmapStream(wctx, op.stream)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			f.cfg.Logger.Warn("record netmap stream", "stream", op.stream, "err", err)
		}
	}
}

// seen notes that device id was seen now.
func (f *Fanout) seen(id string) {
	now := f.cfg.Now()
	f.mu.Lock()
	if f.mu.seen == nil {
		f.mu.seen = map[string]time.Time{}
	}
	f.mu.seen[id] = now
	f.mu.Unlock()
	select {
	case f.touched <- struct{}{}:
	default:
	}
}

// toucher writes what seen noted until ctx ends.
func (f *Fanout) toucher(ctx context.Context) {
	defer f.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.touched:
		}
		f.mu.Lock()
		batch := f.mu.seen
		f.mu.seen = nil
		f.mu.Unlock()
		n := 0
		for id, at := range batch {
			if n > 0 && n%touchBurst == 0 && !pause(ctx, touchPause) {
				return
			}
			f.touch(ctx, id, at)
			n++
		}
	}
}

// pause waits d, or until ctx ends (false).
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// touch records that a device was seen, without failing the caller.
func (f *Fanout) touch(ctx context.Context, id string, at time.Time) {
	ctx, cancel := context.WithTimeout(ctx, touchTimeout)
	defer cancel()
	if err := f.cfg.Store.TouchDevice(ctx, id, at); err != nil && ctx.Err() == nil {
		f.cfg.Logger.Debug("touch device", "device", id, "err", err)
	}
}
