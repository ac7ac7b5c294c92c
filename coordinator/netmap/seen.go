package netmap

import (
	"context"
	"time"
)

// Last seen. A stream notes that its device was seen (when it opens, and
// every touchEvery); one goroutine writes what was noted to the store, at
// most touchBurst rows every touchPause. When every device reconnects at
// once (a coordinator restart), the writes are spread out instead of
// competing with the first recomputes, and the streams' goroutines never
// run the store's deep call stacks. LastSeen is only shown to admins
// (online status comes from presence rows), so a late write costs nothing.
const (
	touchBurst = 50
	touchPause = 100 * time.Millisecond
)

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
