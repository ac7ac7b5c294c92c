// Package testclock is a clock for tests that starts at the real time and
// moves only when told, so TOTP steps and expiries are exact.
package testclock

import (
	"sync"
	"time"
)

// Clock is safe for concurrent use.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	hooks []func()
}

// New returns a clock at the real time.
func New() *Clock { return &Clock{now: time.Now()} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d, then calls the OnAdvance hooks.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	hooks := c.hooks
	c.mu.Unlock()
	for _, h := range hooks {
		h()
	}
}

// OnAdvance calls f after every Advance: for what must notice at once
// that time jumped, as timers on the real clock would have fired.
func (c *Clock) OnAdvance(f func()) {
	c.mu.Lock()
	c.hooks = append(c.hooks, f)
	c.mu.Unlock()
}
