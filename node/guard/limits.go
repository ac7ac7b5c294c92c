package guard

import (
	"math"
	"sync"
	"time"

	"github.com/moatmesh/moat/policy"
)

// localLimiter is the limiter counting in this node's memory: for each
// (identity, grant) a request bucket (rpm), a token bucket (tpm), a
// UTC-day token counter and the requests in flight. Buckets hold up to a
// minute's allowance and refill continuously, so "rpm: 60" admits a
// burst of 60 and then one a second. An admitted request's reservation
// is taken from the token bucket and the day's counter at once and
// corrected to the real use when it settles, so requests in flight can
// never together be promised more than is left. Every operation is O(1)
// under one mutex. Entries exist only for identities of the current
// netmap (keep drops the rest).
type localLimiter struct {
	mu      sync.Mutex
	states  map[limitKey]*limitState
	pending map[string]int // identity → requests holding a slot
	// changes counts the changes of day counters (for Config.Counters).
	changes uint64
	// shared leaves rpm, tpm and tokensPerDay to another limiter
	// (leaseLimiter): this one counts concurrency only.
	shared bool
}

// limits are the limits of g this limiter counts.
func (l *localLimiter) limits(g *policy.GrantRule) policy.Limits {
	lim := g.Limits
	if l.shared {
		lim.RPM, lim.TPM, lim.TokensPerDay = 0, 0, 0
	}
	return lim
}

type limitKey struct{ who, grant string }

type limitState struct {
	inflight int
	req, tok bucket
	day      int64 // UTC day number of dayTokens
	// dayTokens are the day's tokens used and reserved; dayReserved the
	// reserved part (requests admitted that day and still in flight).
	dayTokens, dayReserved int64
}

// bucket is a token bucket holding up to perMin, refilled at perMin a
// minute. Its level may go negative when a request used more tokens than
// it reserved; new requests then wait until it is high enough again.
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

// ticket is a reservation of the local limiter.
type ticket struct {
	l        *localLimiter
	st       *limitState
	lim      policy.Limits
	reserved int64 // tokens taken at admission
	day      int64 // the UTC day they were taken from
	left     int64 // budget: -1 unlimited
	// leftReason is the limit that sets left (reasonTPM or reasonDay).
	leftReason string
}

func newLocalLimiter() *localLimiter {
	return &localLimiter{states: make(map[limitKey]*limitState), pending: make(map[string]int)}
}

func (l *localLimiter) hold(who string, grants []*policy.GrantRule, now time.Time) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	pending := l.pending[who]
	var best *refusal
	for _, g := range grants {
		r := l.stateLocked(who, g.ID).check(l.limits(g), now, pending, 1)
		if r == nil {
			l.pending[who]++
			return nil
		}
		r.want, r.left = 0, 0 // the request's size is not known yet
		if r.grant = g; best == nil || r.retry < best.retry {
			best = r
		}
	}
	return best
}

func (l *localLimiter) unhold(who string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unholdLocked(who)
}

func (l *localLimiter) unholdLocked(who string) {
	if l.pending[who]--; l.pending[who] <= 0 {
		delete(l.pending, who)
	}
}

func (l *localLimiter) stateLocked(who, grant string) *limitState {
	k := limitKey{who, grant}
	st := l.states[k]
	if st == nil {
		st = &limitState{}
		l.states[k] = st
	}
	return st
}

func (l *localLimiter) reserve(who string, g *policy.GrantRule, tokens int64, _ policy.Price, now time.Time, held bool) (reservation, *refusal) {
	lim := l.limits(g)
	l.mu.Lock()
	defer l.mu.Unlock()
	if held {
		l.unholdLocked(who)
	}
	st := l.stateLocked(who, g.ID)
	if r := st.check(lim, now, 0, tokens); r != nil {
		r.grant = g
		return nil, r
	}
	t := &ticket{l: l, st: st, lim: lim, reserved: tokens, day: st.day}
	t.left, t.leftReason = st.left(lim)
	st.inflight++
	if lim.RPM > 0 {
		st.req.level--
	}
	if lim.TPM > 0 {
		st.tok.level -= float64(tokens)
	}
	if lim.TokensPerDay > 0 {
		st.dayTokens += tokens
		st.dayReserved += tokens
		l.changes++
	}
	return t, nil
}

// check says whether one more request that reserves tokens may start at
// now beside pending ones that hold slots but are not admitted yet; if
// not, why and when to retry.
func (st *limitState) check(lim policy.Limits, now time.Time, pending int, tokens int64) *refusal {
	if lim.Concurrency > 0 && st.inflight+pending >= lim.Concurrency {
		return &refusal{reason: reasonConcurrency, retry: time.Second}
	}
	if lim.RPM > 0 {
		want := float64(1 + pending)
		if st.req.refill(lim.RPM, now); st.req.level < want {
			return &refusal{reason: reasonRPM, retry: st.req.wait(lim.RPM, want)}
		}
	}
	if lim.TPM > 0 {
		st.tok.refill(lim.TPM, now)
		switch {
		case tokens > int64(lim.TPM):
			return &refusal{reason: reasonTPM, want: tokens, left: int64(st.tok.level), never: true}
		case st.tok.level < float64(tokens):
			return &refusal{reason: reasonTPM, want: tokens, left: int64(st.tok.level), retry: st.tok.wait(lim.TPM, float64(tokens))}
		}
	}
	if lim.TokensPerDay > 0 {
		return st.checkDay(lim.TokensPerDay, now, tokens)
	}
	return nil
}

// checkDay checks the UTC day's counter, starting a new one on a new day.
func (st *limitState) checkDay(limit int64, now time.Time, tokens int64) *refusal {
	day := now.UTC().Unix() / 86400
	if day != st.day {
		st.day, st.dayTokens, st.dayReserved = day, 0, 0
	}
	left := limit - st.dayTokens
	switch {
	case tokens > limit:
		return &refusal{reason: reasonDay, want: tokens, left: left, never: true}
	case tokens > left:
		retry := time.Unix((day+1)*86400, 0).Sub(now)
		if tokens <= left+st.dayReserved {
			retry = time.Second // fits once requests in flight have settled
		}
		return &refusal{reason: reasonDay, want: tokens, left: left, retry: retry}
	}
	return nil
}

// left is how many tokens the limits have left now, and which limit sets
// that; -1 when none counts tokens.
func (st *limitState) left(lim policy.Limits) (int64, string) {
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

func (t *ticket) budget() (int64, string) { return t.left, t.leftReason }

// settle releases the request's concurrency slot and charges its tokens
// in place of the reservation. Tokens of a request admitted on an
// earlier UTC day stay charged to that day.
func (t *ticket) settle(in, out int64) {
	used := in + out
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	st := t.st
	st.inflight--
	if t.lim.TPM > 0 {
		st.tok.level = math.Min(float64(t.lim.TPM), st.tok.level+float64(t.reserved-used))
	}
	if t.lim.TokensPerDay > 0 && st.day == t.day {
		st.dayTokens += used - t.reserved
		st.dayReserved -= t.reserved
		t.l.changes++
	}
}

func (l *localLimiter) keep(keep map[string]bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, st := range l.states {
		if !keep[k.who] && st.inflight == 0 {
			delete(l.states, k)
		}
	}
}
