package guard

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// LeaseSource hands out leases of the organisation's daily quotas: the
// node's client of the coordinator's POST /api/v1/node/lease.
type LeaseSource interface {
	Lease(ctx context.Context, req wire.LeaseRequest) (wire.LeaseResponse, error)
}

// leaseLimiter is the limiter of a node with a coordinator: tokensPerDay
// counts for the organisation, every other limit on this node
// (localLimiter without its day counter). For each (identity, grant) it
// keeps an account of tokens leased from the coordinator; a request is
// admitted when its reservation fits the account, which is refilled by
// a new lease (the request waits for it) when it does not. Settling
// gives the unused part of a reservation back to the account; what an
// account holds when its lease expires is returned with the next ask.
//
// The overshoot is bounded by construction (docs/policy.md): the
// coordinator never leases beyond the quota, so use beyond it comes only
// from requests that use more than they reserved, and a request's
// budget beyond its reservation comes out of its node's exposure
// allowance of one lease size. While the coordinator cannot be reached
// the node admits on what its accounts hold, then once a day per account
// on one more lease size of its own, reported as extra when the
// coordinator answers again; beyond that it refuses (reasonLeaseDown).
type leaseLimiter struct {
	local *localLimiter // rpm, tpm, concurrency
	src   LeaseSource
	log   *slog.Logger
	// timeout bounds one lease request.
	timeout time.Duration
	mu      sync.Mutex
	accts   map[limitKey]*account
}

// account is one (identity, grant)'s tokens leased for a UTC day.
type account struct {
	day int64
	// balance is the leased tokens not reserved by a request (negative:
	// requests used more than they reserved).
	balance int64
	// exposure is the budget granted to requests in flight beyond their
	// reservations; at most one lease size.
	exposure int64
	expires  time.Time // of the last lease; zero before the first
	// unlimited: the coordinator's policy sets no tokensPerDay.
	unlimited bool
	// extra is the allowance taken while the coordinator was unreachable
	// and not reported yet; allowance says whether the day's allowance
	// was taken.
	extra     int64
	allowance bool
	fetching  chan struct{} // closed when the lease request running ends
}

func newLeaseLimiter(src LeaseSource, timeout time.Duration, log *slog.Logger) *leaseLimiter {
	local := newLocalLimiter()
	local.noDay = true
	return &leaseLimiter{local: local, src: src, log: log, timeout: timeout, accts: make(map[limitKey]*account)}
}

// leaseSize is how many tokens a node asks for at a time: a tenth of the
// daily quota (at least 1).
func leaseSize(lim policy.Limits) int64 { return max(lim.TokensPerDay/10, 1) }

func (l *leaseLimiter) hold(who string, grants []*policy.GrantRule, now time.Time) *refusal {
	return l.local.hold(who, grants, now)
}

func (l *leaseLimiter) unhold(who string) { l.local.unhold(who) }

func (l *leaseLimiter) keep(keep map[string]bool) {
	l.local.keep(keep)
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, a := range l.accts {
		if !keep[k.who] && a.exposure == 0 && a.fetching == nil {
			delete(l.accts, k) // its leased tokens stay charged: fail closed
		}
	}
}

func (l *leaseLimiter) reserve(who string, g *policy.GrantRule, tokens int64, now time.Time, held bool) (reservation, *refusal) {
	if g.Limits.TokensPerDay <= 0 {
		return l.local.reserve(who, g, tokens, now, held)
	}
	lt, r := l.take(limitKey{who, g.ID}, g, tokens, now)
	if r != nil {
		if held {
			l.local.unhold(who)
		}
		return nil, r
	}
	t, r := l.local.reserve(who, g, tokens, now, held)
	if r != nil {
		lt.settle(0)
		return nil, r
	}
	lt.local = t
	return lt, nil
}

// take reserves tokens of the account of k, leasing more when it holds
// too few.
func (l *leaseLimiter) take(k limitKey, g *policy.GrantRule, tokens int64, now time.Time) (*leaseTicket, *refusal) {
	size, day := leaseSize(g.Limits), now.UTC().Unix()/86400
	if tokens > g.Limits.TokensPerDay {
		return nil, &refusal{grant: g, reason: reasonDay, want: tokens, left: 0, never: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		a := l.accts[k]
		if a == nil || a.day != day {
			a = &account{day: day}
			l.accts[k] = a
		}
		if a.unlimited && now.Before(a.expires) {
			return &leaseTicket{l: l, a: a, unlimited: true}, nil
		}
		if a.balance >= tokens && now.Before(a.expires) {
			return l.admit(a, tokens, size, false), nil
		}
		if a.fetching != nil { // another request is asking already
			ch := a.fetching
			l.mu.Unlock()
			<-ch
			l.mu.Lock()
			continue
		}
		err := l.ask(k, a, tokens, size, now)
		switch {
		case err == nil && a.balance < tokens && !a.unlimited:
			return nil, &refusal{grant: g, reason: reasonDay, want: tokens, left: max(a.balance, 0),
				retry: time.Unix((day+1)*86400, 0).Sub(now)}
		case err == nil:
			continue
		case a.balance >= tokens: // keep enforcing the last lease
			return l.admit(a, tokens, size, true), nil
		case !a.allowance:
			l.log.Warn("coordinator unreachable for a lease; admitting on the node's allowance", "grant", k.grant, "tokens", size, "err", err)
			a.allowance, a.extra, a.balance = true, a.extra+size, a.balance+size
			if a.balance >= tokens {
				return l.admit(a, tokens, size, true), nil
			}
		}
		return nil, &refusal{grant: g, reason: reasonLeaseDown, want: tokens, left: max(a.balance, 0), retry: 10 * time.Second}
	}
}

// ask leases tokens for a from the coordinator, returning what a holds
// beyond its debt; called with l.mu held, which it drops meanwhile.
func (l *leaseLimiter) ask(k limitKey, a *account, tokens, size int64, now time.Time) error {
	req := wire.LeaseRequest{Who: k.who, Grant: k.grant, Day: a.day, Return: max(a.balance, 0), Extra: a.extra}
	req.Want = max(size, tokens-min(a.balance, 0))
	done := make(chan struct{})
	a.fetching = done
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	res, err := l.src.Lease(ctx, req)
	cancel()
	l.mu.Lock()
	a.fetching = nil
	close(done)
	if err != nil {
		return err
	}
	a.balance += res.Granted - req.Return
	a.extra -= req.Extra
	a.expires, a.unlimited = res.Expires, res.Limit == 0
	if !a.expires.After(now) { // the coordinator's clock runs behind
		a.expires = now.Add(time.Second)
	}
	return nil
}

// admit takes tokens from a, giving the request a budget of up to one
// lease size beyond them while a's exposure allows.
func (l *leaseLimiter) admit(a *account, tokens, size int64, offline bool) *leaseTicket {
	a.balance -= tokens
	beyond := max(min(a.balance, size-a.exposure), 0)
	a.exposure += beyond
	return &leaseTicket{l: l, a: a, reserved: tokens, beyond: beyond, offline: offline}
}

// leaseTicket is a reservation of the lease limiter.
type leaseTicket struct {
	l                *leaseLimiter
	a                *account
	local            reservation // rpm, tpm, concurrency
	reserved, beyond int64
	unlimited        bool
	// offline: admitted while the coordinator could not be reached.
	offline bool
}

func (t *leaseTicket) budget() (int64, string) {
	b, why := t.local.budget()
	if t.unlimited {
		return b, why
	}
	if own := t.reserved + t.beyond; b < 0 || own < b {
		return own, reasonDay
	}
	return b, why
}

func (t *leaseTicket) settle(used int64) {
	if t.local != nil {
		t.local.settle(used)
	}
	if t.unlimited {
		return
	}
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	t.a.balance += t.reserved - used
	t.a.exposure -= t.beyond
}
