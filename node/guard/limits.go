package guard

import (
	"math"
	"sync"
	"time"

	"github.com/moatmesh/moat/policy"
)

// limiter holds the per-identity limit state: for each (identity, grant)
// a request bucket (rpm), a token bucket (tpm), a UTC-day token counter and
// the requests in flight. Buckets hold up to a minute's allowance and
// refill continuously, so "rpm: 60" admits a burst of 60 and then one a
// second. Every operation is O(1) under one mutex. Entries exist only for
// identities of the current netmap (prune drops the rest).
type limiter struct {
	mu     sync.Mutex
	states map[limitKey]*limitState
}

type limitKey struct{ who, grant string }

type limitState struct {
	inflight  int
	req, tok  bucket
	day       int64 // UTC day number of dayTokens
	dayTokens int64
}

// bucket is a token bucket holding up to perMin, refilled at perMin a
// minute. Its level may go negative when a request used more tokens than
// were left; new requests then wait until it is positive again.
type bucket struct {
	level float64
	last  time.Time
}

func (b *bucket) refill(perMin int, now time.Time) {
	if b.last.IsZero() {
		b.level, b.last = float64(perMin), now
		return
	}
	if d := now.Sub(b.last); d > 0 {
		b.level = math.Min(float64(perMin), b.level+d.Minutes()*float64(perMin))
		b.last = now
	}
}

// wait is how long until the level reaches want.
func (b *bucket) wait(perMin int, want float64) time.Duration {
	return time.Duration((want - b.level) / float64(perMin) * float64(time.Minute))
}

// ticket is an admitted request's hold on its limit state.
type ticket struct {
	l      *limiter
	st     *limitState
	lim    policy.Limits
	budget int64 // tokens the request may use; -1: unlimited
	// budgetReason is the limit that sets budget (reasonTPM or reasonDay).
	budgetReason string
}

func newLimiter() *limiter { return &limiter{states: make(map[limitKey]*limitState)} }

// admit checks the limits of grant for who at now. It returns a ticket to
// finish, or the refusal reason and when to retry.
func (l *limiter) admit(who string, g *policy.GrantRule, now time.Time) (*ticket, string, time.Duration) {
	lim := g.Limits
	l.mu.Lock()
	defer l.mu.Unlock()
	k := limitKey{who, g.ID}
	st := l.states[k]
	if st == nil {
		st = &limitState{}
		l.states[k] = st
	}
	if reason, retry := st.check(lim, now); reason != "" {
		return nil, reason, retry
	}
	st.inflight++
	if lim.RPM > 0 {
		st.req.level--
	}
	t := &ticket{l: l, st: st, lim: lim}
	t.budget, t.budgetReason = st.budget(lim)
	return t, "", 0
}

func (st *limitState) check(lim policy.Limits, now time.Time) (string, time.Duration) {
	if lim.Concurrency > 0 && st.inflight >= lim.Concurrency {
		return reasonConcurrency, time.Second
	}
	if lim.RPM > 0 {
		if st.req.refill(lim.RPM, now); st.req.level < 1 {
			return reasonRPM, st.req.wait(lim.RPM, 1)
		}
	}
	if lim.TPM > 0 {
		if st.tok.refill(lim.TPM, now); st.tok.level < 1 {
			return reasonTPM, st.tok.wait(lim.TPM, 1)
		}
	}
	if lim.TokensPerDay > 0 {
		day := now.UTC().Unix() / 86400
		if day != st.day {
			st.day, st.dayTokens = day, 0
		}
		if st.dayTokens >= lim.TokensPerDay {
			return reasonDay, time.Unix((day+1)*86400, 0).Sub(now)
		}
	}
	return "", 0
}

// budget is how many tokens a request admitted now may use in total.
func (st *limitState) budget(lim policy.Limits) (int64, string) {
	b, why := int64(-1), ""
	if lim.TPM > 0 {
		b, why = int64(st.tok.level), reasonTPM
	}
	if lim.TokensPerDay > 0 {
		if left := lim.TokensPerDay - st.dayTokens; b < 0 || left < b {
			b, why = left, reasonDay
		}
	}
	return b, why
}

// finish releases the request's concurrency slot and charges its tokens.
func (t *ticket) finish(tokens int64) {
	if t == nil {
		return
	}
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	t.st.inflight--
	if t.lim.TPM > 0 {
		t.st.tok.level -= float64(tokens)
	}
	if t.lim.TokensPerDay > 0 {
		t.st.dayTokens += tokens
	}
}

// prune drops the state of identities not in keep that have nothing in
// flight, so the limiter stays as small as the netmap.
func (l *limiter) prune(keep map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, st := range l.states {
		if !keep[k.who] && st.inflight == 0 {
			delete(l.states, k)
		}
	}
}
