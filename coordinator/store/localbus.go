package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
)

// localBus is the Bus of a SQLite database: listeners in this process,
// by database file and topic.
type localBus struct {
	mu   sync.Mutex
	subs map[chan string]struct{}
}

// localBusCap is how many messages a listener may fall behind; one that
// falls further loses its subscription and must listen again (and
// resync), as after a lost PostgreSQL connection.
const localBusCap = 1024

var errFellBehind = errors.New("listener fell behind")

var localBuses struct {
	sync.Mutex
	byPath map[localBusKey]*localBus
}

type localBusKey struct{ path, topic string }

func localBusFor(path, topic string) *localBus {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	localBuses.Lock()
	defer localBuses.Unlock()
	if localBuses.byPath == nil {
		localBuses.byPath = map[localBusKey]*localBus{}
	}
	k := localBusKey{path, topic}
	b := localBuses.byPath[k]
	if b == nil {
		b = &localBus{subs: map[chan string]struct{}{}}
		localBuses.byPath[k] = b
	}
	return b
}

func (b *localBus) publish(msg string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- msg:
		default:
			delete(b.subs, ch)
			close(ch)
		}
	}
}

func (b *localBus) listen(ctx context.Context, listening func(), deliver func(string)) error {
	ch := make(chan string, localBusCap)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, ch)
		b.mu.Unlock()
	}()
	listening()
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-ch:
			if !ok {
				return errFellBehind
			}
			deliver(msg)
		}
	}
}
