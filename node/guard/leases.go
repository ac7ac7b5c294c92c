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
// and the policy's budgets count for the organisation, every other limit
// on this node (localLimiter without its day counter). For each
// (identity, grant) and counter kind ("" for tokensPerDay,
// wire.LeaseTokens and wire.LeaseMoney for the budgets the grant meters)
// it keeps an account of units (tokens, or micro-units of money) leased
// from the coordinator; a request is admitted when its reservation fits
// every account it draws on, each refilled by a new lease (the request
// waits for it) when it does not. Settling gives the unused part of a
// reservation back to the accounts; what an account holds when its
// lease expires is returned with the next ask.
//
// The overshoot is bounded by construction (docs/policy.md): the
// coordinator never leases beyond a hard limit, so use beyond it comes
// only from requests that use more than they reserved, and a request's
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
	accts   map[acctKey]*account
}

// acctKey names an account: an identity's counter of one kind under a
// grant.
type acctKey struct{ who, grant, kind string }

// account is one acctKey's units leased for a UTC day.
type account struct {
	day int64
	// balance is the leased units not reserved by a request (negative:
	// requests used more than they reserved).
	balance int64
	// exposure is the budget granted to requests in flight beyond their
	// reservations; at most one lease size.
	exposure int64
	expires  time.Time // of the last lease; zero before the first
	// unlimited: the coordinator's policy sets no limit of this kind.
	unlimited bool
	// limit is the last lease's Limit (budgets: the smallest threshold),
	// which sizes the next; budgets are the budgets it counted.
	limit   int64
	budgets []wire.BudgetState
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
	return &leaseLimiter{local: local, src: src, log: log, timeout: timeout, accts: make(map[acctKey]*account)}
}

// leaseSize is how many units a node asks for at a time: a tenth of the
// limit (at least 1).
func leaseSize(limit int64) int64 { return max(limit/10, 1) }

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
			delete(l.accts, k) // its leased units stay charged: fail closed
		}
	}
}

// draw is what one request takes of one account.
type draw struct {
	kind  string
	units int64
}

// draws returns the accounts a request of tokens (priced at price) under
// g takes from, and how much of each.
func draws(g *policy.GrantRule, tokens int64, price policy.Price) []draw {
	var out []draw
	if g.Limits.TokensPerDay > 0 {
		out = append(out, draw{"", tokens})
	}
	for _, unit := range g.Budgets {
		switch unit {
		case wire.LeaseTokens:
			out = append(out, draw{unit, tokens})
		case wire.LeaseMoney:
			if cost := (policy.Price{Input: price.Max()}).Cost(tokens, 0); cost > 0 {
				out = append(out, draw{unit, cost})
			}
		}
	}
	return out
}

func (l *leaseLimiter) reserve(who string, g *policy.GrantRule, tokens int64, price policy.Price, now time.Time, held bool) (reservation, *refusal) {
	ds := draws(g, tokens, price)
	if len(ds) == 0 {
		return l.local.reserve(who, g, tokens, price, now, held)
	}
	t := &leaseTicket{l: l, price: price}
	for _, d := range ds {
		p, r := l.take(acctKey{who, g.ID, d.kind}, g, d.units, now)
		if r != nil {
			if held {
				l.local.unhold(who)
			}
			t.settle(0, 0)
			return nil, r
		}
		t.parts = append(t.parts, p)
	}
	local, r := l.local.reserve(who, g, tokens, price, now, held)
	if r != nil {
		t.settle(0, 0)
		return nil, r
	}
	t.local = local
	return t, nil
}

// take reserves units of the account of k, leasing more when it holds
// too few.
func (l *leaseLimiter) take(k acctKey, g *policy.GrantRule, units int64, now time.Time) (leasePart, *refusal) {
	day := now.UTC().Unix() / 86400
	if k.kind == "" && units > g.Limits.TokensPerDay {
		return leasePart{}, &refusal{grant: g, reason: reasonDay, want: units, left: 0, never: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		a := l.accts[k]
		if a == nil || a.day != day {
			a = &account{day: day}
			if k.kind == "" {
				a.limit = g.Limits.TokensPerDay
			}
			l.accts[k] = a
		}
		size := units
		if a.limit > 0 {
			size = leaseSize(a.limit)
		}
		if a.unlimited && now.Before(a.expires) {
			return leasePart{kind: k.kind, unlimited: true}, nil
		}
		if a.balance >= units && now.Before(a.expires) {
			return l.admit(a, k.kind, units, size, false), nil
		}
		if a.fetching != nil { // another request is asking already
			ch := a.fetching
			l.mu.Unlock()
			<-ch
			l.mu.Lock()
			continue
		}
		err := l.ask(k, a, units, size, now)
		switch {
		case err == nil && a.balance < units && !a.unlimited:
			return leasePart{}, exhausted(g, k.kind, a, units, now)
		case err == nil:
			continue
		case a.balance >= units: // keep enforcing the last lease
			return l.admit(a, k.kind, units, size, true), nil
		case !a.allowance:
			l.log.Warn("coordinator unreachable for a lease; admitting on the node's allowance", "grant", k.grant, "kind", k.kind, "units", size, "err", err)
			a.allowance, a.extra, a.balance = true, a.extra+size, a.balance+size
			if a.balance >= units {
				return l.admit(a, k.kind, units, size, true), nil
			}
		}
		r := &refusal{grant: g, reason: reasonLeaseDown, want: units, left: max(a.balance, 0), retry: 10 * time.Second}
		if k.kind != "" {
			r.budget = &wire.BudgetState{Name: "the " + k.kind + " budgets that count " + k.who + " under " + k.grant, Unit: k.kind}
		}
		return leasePart{}, r
	}
}

// ask leases units for a from the coordinator, returning what a holds
// beyond its debt; called with l.mu held, which it drops meanwhile.
func (l *leaseLimiter) ask(k acctKey, a *account, units, size int64, now time.Time) error {
	req := wire.LeaseRequest{Who: k.who, Grant: k.grant, Day: a.day, Return: max(a.balance, 0), Extra: a.extra, Kind: k.kind}
	req.Want = max(size, units-min(a.balance, 0))
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
	a.limit, a.budgets = res.Limit, res.Budgets
	if !a.expires.After(now) { // the coordinator's clock runs behind
		a.expires = now.Add(time.Second)
	}
	return nil
}

// admit takes units from a, giving the request a budget of up to one
// lease size beyond them while a's exposure allows.
func (l *leaseLimiter) admit(a *account, kind string, units, size int64, offline bool) leasePart {
	a.balance -= units
	beyond := max(min(a.balance, size-a.exposure), 0)
	a.exposure += beyond
	return leasePart{a: a, kind: kind, reserved: units, beyond: beyond, offline: offline, warn: warnings(a.budgets)}
}
