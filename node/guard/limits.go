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
//
// Before a request's body is read its identity takes a slot (reserve),
// which counts against the concurrency and requests a minute of every
// grant the identity holds until the request is admitted under one of
// them or ends; a caller none of whose grants could admit one more is
// refused before it sends its body.
type limiter struct {
	mu      sync.Mutex
	states  map[limitKey]*limitState
	pending map[string]int // identity → requests holding a slot
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

func newLimiter() *limiter {
	return &limiter{states: make(map[limitKey]*limitState), pending: make(map[string]int)}
}

// reserve takes a slot for a request of who whose body is still to be
// read, if one of grants (all those who holds here) could admit one more
// request at now beside the requests already holding slots. Otherwise it
// returns the grant that refuses with the shortest wait, the reason and
// the wait.
func (l *limiter) reserve(who string, grants []*policy.GrantRule, now time.Time) (*policy.GrantRule, string, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pending := l.pending[who]
	var by *policy.GrantRule
	var reason string
	var retry time.Duration
	for _, g := range grants {
		r, w := l.stateLocked(who, g.ID).check(g.Limits, now, pending)
		if r == "" {
			l.pending[who]++
			return nil, "", 0
		}
		if by == nil || w < retry {
			by, reason, retry = g, r, w
		}
	}
	return by, reason, retry
}

// unreserve gives back a slot of who.
func (l *limiter) unreserve(who string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unreserveLocked(who)
}

func (l *limiter) unreserveLocked(who string) {
	if l.pending[who]--; l.pending[who] <= 0 {
		delete(l.pending, who)
	}
}

func (l *limiter) stateLocked(who, grant string) *limitState {
	k := limitKey{who, grant}
	st := l.states[k]
	if st == nil {
		st = &limitState{}
		l.states[k] = st
	}
	return st
}

// admit checks the limits of grant for who at now, turning the request's
// slot into a ticket when reserved. It returns a ticket to finish, or the
// refusal reason and when to retry (the slot is given back either way).
func (l *limiter) admit(who string, g *policy.GrantRule, now time.Time, reserved bool) (*ticket, string, time.Duration) {
	lim := g.Limits
	l.mu.Lock()
	defer l.mu.Unlock()
	if reserved {
		l.unreserveLocked(who)
	}
	st := l.stateLocked(who, g.ID)
	if reason, retry := st.check(lim, now, 0); reason != "" {
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

// check says whether one more request may start at now beside pending
// ones that hold slots but are not admitted yet; if not, why and when to
// retry.
func (st *limitState) check(lim policy.Limits, now time.Time, pending int) (string, time.Duration) {
	if lim.Concurrency > 0 && st.inflight+pending >= lim.Concurrency {
		return reasonConcurrency, time.Second
	}
	if lim.RPM > 0 {
		want := float64(1 + pending)
		if st.req.refill(lim.RPM, now); st.req.level < want {
			return reasonRPM, st.req.wait(lim.RPM, want)
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
