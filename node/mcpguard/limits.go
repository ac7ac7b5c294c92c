package mcpguard

import (
	"strings"
	"sync"
	"time"
)

// limiter counts calls per (caller, grant): a token bucket holding a
// minute's allowance of calls (rpm) and the calls in flight
// (concurrency).
type limiter struct {
	mu struct {
		sync.Mutex
		counts map[string]*count
	}
}

type count struct {
	tokens   float64
	last     time.Time
	inFlight int
}

func newLimiter() *limiter {
	l := &limiter{}
	l.mu.counts = map[string]*count{}
	return l
}

// acquire admits one call under rpm and concurrency (0: no limit) at now,
// or says which limit refused it. release must be called once the call
// ends when it is admitted.
func (l *limiter) acquire(key string, rpm, concurrency int, now time.Time) (release func(), refusedBy string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.mu.counts[key]
	if c == nil {
		c = &count{tokens: float64(rpm), last: now}
		l.mu.counts[key] = c
	}
	if rpm > 0 {
		c.tokens = min(float64(rpm), c.tokens+now.Sub(c.last).Minutes()*float64(rpm))
		c.last = now
		if c.tokens < 1 {
			return nil, "rpm"
		}
	}
	if concurrency > 0 && c.inFlight >= concurrency {
		return nil, "concurrency"
	}
	if rpm > 0 {
		c.tokens--
	}
	c.inFlight++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		c.inFlight--
	}, ""
}

// keep forgets the counts of callers not in callers (limit keys) that
// have no call in flight: a netmap dropped them.
func (l *limiter) keep(callers map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, c := range l.mu.counts {
		caller, _, _ := strings.Cut(k, "|")
		if !callers[caller] && c.inFlight == 0 {
			delete(l.mu.counts, k)
		}
	}
}
