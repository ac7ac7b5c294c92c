package guard

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// LeaseSource hands out leases of the organisation's limits: the node's
// client of the coordinator's POST /api/v1/node/lease.
type LeaseSource interface {
	Lease(ctx context.Context, req wire.LeaseRequest) (wire.LeaseResponse, error)
}

// leaseLimiter is the limiter of a node with a coordinator: rpm, tpm,
// tokensPerDay and the policy's budgets count for the organisation,
// concurrency on this node (localLimiter, shared). For each (identity,
// grant) and counter kind (wire.LeaseRPM, wire.LeaseTPM, "" for
// tokensPerDay, wire.LeaseTokens and wire.LeaseMoney for the budgets the
// grant meters) it keeps an account of units (requests, tokens, or
// micro-units of money) leased from the coordinator (leaseaccount.go); a
// request is admitted when its reservation fits every account it draws
// on, each refilled by a new lease (the request waits for it) when it
// does not. Settling gives the unused part of a reservation back to the
// accounts; what an account holds when its lease expires is returned
// with the next ask. rpm and tpm count per UTC minute of the
// coordinator's clock and their leases end with the minute.
//
// The overshoot is bounded by construction (docs/policy.md): the
// coordinator never leases beyond a hard limit, so use beyond it comes
// only from requests that use more than they reserved, and a request's
// budget beyond its reservation comes out of its node's exposure
// allowance of one lease size (none for rpm: a request is one request).
// While the coordinator cannot be reached the node admits on what its
// accounts hold, then once per day (rpm, tpm: per minute) per account on
// one more lease size of its own, reported as extra when the coordinator
// answers again; beyond that it refuses (reasonLeaseDown).
type leaseLimiter struct {
	local *localLimiter // concurrency
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

func newLeaseLimiter(src LeaseSource, timeout time.Duration, log *slog.Logger) *leaseLimiter {
	local := newLocalLimiter()
	local.shared = true
	return &leaseLimiter{local: local, src: src, log: log, timeout: timeout, accts: make(map[acctKey]*account)}
}

// leaseSize is how many units a node asks for at a time: a tenth of the
// limit (at least 1).
func leaseSize(limit int64) int64 { return max(limit/10, 1) }

func (l *leaseLimiter) hold(who string, grants []*policy.GrantRule, now time.Time) *refusal {
	if r := l.rpmSpent(who, grants, now); r != nil {
		return r
	}
	return l.local.hold(who, grants, now)
}

// rpmSpent is the refusal of a request of who, before its body is read,
// when every one of grants has rpm and the node knows its minute used
// up (the coordinator had no more to lease); nil otherwise.
func (l *leaseLimiter) rpmSpent(who string, grants []*policy.GrantRule, now time.Time) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best *refusal
	for _, g := range grants {
		a := l.accts[acctKey{who, g.ID, wire.LeaseRPM}]
		if g.Limits.RPM == 0 || a == nil || !a.full || a.balance >= 1 || a.set != int64(g.Limits.RPM) || !now.Before(a.expires) {
			return nil
		}
		if r := exhausted(g, wire.LeaseRPM, a, 1, now); best == nil || r.retry < best.retry {
			best = r
		}
	}
	return best
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
// g takes from, and how much of each: the request itself of rpm, its
// tokens of tpm and tokensPerDay, and of the budgets the grant meters.
func draws(g *policy.GrantRule, tokens int64, price policy.Price) []draw {
	var out []draw
	if g.Limits.RPM > 0 {
		out = append(out, draw{wire.LeaseRPM, 1})
	}
	if g.Limits.TPM > 0 {
		out = append(out, draw{wire.LeaseTPM, tokens})
	}
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

// setLimit is g's limit of kind as the node's netmap says it; 0 for
// budgets, which only the coordinator knows.
func setLimit(g *policy.GrantRule, kind string) int64 {
	switch kind {
	case "":
		return g.Limits.TokensPerDay
	case wire.LeaseRPM:
		return int64(g.Limits.RPM)
	case wire.LeaseTPM:
		return int64(g.Limits.TPM)
	}
	return 0
}

// kindReason is the refusal reason of a limit of kind running out.
func kindReason(kind string) string {
	switch kind {
	case "":
		return reasonDay
	case wire.LeaseRPM:
		return reasonRPM
	case wire.LeaseTPM:
		return reasonTPM
	}
	return reasonBudget
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
			t.release()
			return nil, r
		}
		t.parts = append(t.parts, p)
	}
	local, r := l.local.reserve(who, g, tokens, price, now, held)
	if r != nil {
		t.release()
		return nil, r
	}
	t.local = local
	return t, nil
}

// take reserves units of the account of k, leasing more when it holds
// too few.
func (l *leaseLimiter) take(k acctKey, g *policy.GrantRule, units int64, now time.Time) (leasePart, *refusal) {
	set := setLimit(g, k.kind)
	if set > 0 && units > set {
		return leasePart{}, &refusal{grant: g, reason: kindReason(k.kind), want: units, never: true}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		a := l.account(k, set, now)
		size := units
		switch {
		case a.set != set && set > 0: // sized by the netmap's new limit
			size = leaseSize(set)
		case a.limit > 0:
			size = leaseSize(a.limit)
		}
		valid := now.Before(a.expires) && a.set == set
		down := now.Before(a.downUntil)
		switch {
		case valid && a.unlimited:
			return leasePart{kind: k.kind, unlimited: true}, nil
		case a.balance >= units && (valid || down):
			return l.admit(a, k.kind, units, size), nil
		case valid && a.full:
			return leasePart{}, exhausted(g, k.kind, a, units, now)
		case down && !a.allowance:
			l.allow(a, size)
			continue
		case a.fetching != nil: // another request is asking already
			ch := a.fetching
			l.mu.Unlock()
			<-ch
			l.mu.Lock()
			continue
		}
		leased, err := l.ask(k, a, units, size, set, now)
		if err == nil {
			// What was just leased serves this request even where the
			// coordinator's limit and the netmap's disagree.
			switch {
			case leased.unlimited:
				return leasePart{kind: k.kind, unlimited: true}, nil
			case leased.balance >= units:
				return l.admit(leased, k.kind, units, size), nil
			case leased.full:
				return leasePart{}, exhausted(g, k.kind, leased, units, now)
			}
			continue // requests that settled meanwhile took what was leased
		}
		l.onOwn(k, a, set, now, err)
		if a.balance < units && !a.allowance {
			l.allow(a, size)
		}
		if a.balance >= units {
			return l.admit(a, k.kind, units, size), nil
		}
		return leasePart{}, unreachable(g, k, a, units, now)
	}
}

// admit takes units from a, giving the request a budget of up to one
// lease size beyond them while a's exposure allows (none for rpm).
func (l *leaseLimiter) admit(a *account, kind string, units, size int64) leasePart {
	a.balance -= units
	beyond := max(min(a.balance, size-a.exposure), 0)
	if kind == wire.LeaseRPM {
		beyond = 0
	}
	a.exposure += beyond
	return leasePart{a: a, kind: kind, reserved: units, beyond: beyond, offline: a.offline, warn: warnings(a.budgets)}
}
