package guard

import (
	"context"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// retryDown is how long a node admits on what it holds, without asking,
// after the coordinator could not be reached for a lease.
const retryDown = 10 * time.Second

// account is one acctKey's units leased for one period: a UTC day
// (tokensPerDay, budgets) or a minute of the coordinator's clock (rpm,
// tpm).
type account struct {
	// period is the UTC day number, or the minute (wire.LeaseResponse.
	// Window; while the coordinator is unreachable, this node's own
	// minute) the units count in.
	period int64
	// balance is the leased units not reserved by a request (negative:
	// requests used more than they reserved).
	balance int64
	// exposure is the budget granted to requests in flight beyond their
	// reservations; at most one lease size.
	exposure int64
	expires  time.Time // of the last lease, on this node's clock; zero before the first
	// unlimited: the coordinator's policy sets no limit of this kind.
	unlimited bool
	// limit is the last lease's Limit (budgets: the smallest threshold),
	// which sizes the next; budgets are the budgets it counted.
	limit   int64
	budgets []wire.BudgetState
	// set is the grant's limit of this kind in the netmap when the
	// account was last leased (setLimit): a netmap that changes it ends
	// the lease at once, so a quota change reaches the node with the
	// netmap rather than a lease lifetime later.
	set int64
	// full: the coordinator had no more to lease when last asked; until
	// the lease expires, a request the balance cannot cover is refused
	// without asking again.
	full bool
	// downUntil: the coordinator could not be reached; until then the
	// node admits on what it holds without asking. offline: the balance
	// is admitted on while the coordinator cannot be reached.
	downUntil time.Time
	offline   bool
	// extra is the allowance taken while the coordinator was unreachable
	// and not reported yet; allowance says whether the period's allowance
	// was taken.
	extra     int64
	allowance bool
	fetching  chan struct{} // closed when the lease request running ends
}

// perMinute reports whether accounts of kind count per minute of the
// coordinator's clock (rpm, tpm) rather than per UTC day.
func perMinute(kind string) bool { return kind == wire.LeaseRPM || kind == wire.LeaseTPM }

// account returns k's account at now, a new one when the period it
// counted in is over: a new UTC day, or for rpm and tpm the end of the
// lease (the coordinator's minute). Called with l.mu held.
func (l *leaseLimiter) account(k acctKey, set int64, now time.Time) *account {
	a := l.accts[k]
	switch {
	case a == nil:
	case perMinute(k.kind) && (a.expires.IsZero() || now.Before(a.expires)):
		return a
	case !perMinute(k.kind) && a.period == now.UTC().Unix()/86400:
		return a
	case a.fetching != nil: // replaced when the ask running ends
		return a
	}
	a = &account{limit: set, set: set}
	if !perMinute(k.kind) {
		a.period = now.UTC().Unix() / 86400
	}
	l.accts[k] = a
	return a
}

// ask leases units for a from the coordinator and returns the account
// that holds them; called with l.mu held, which it drops meanwhile. An
// rpm or tpm lease of a new minute starts a new account; requests in
// flight settle into the old one.
func (l *leaseLimiter) ask(k acctKey, a *account, units, size, set int64, now time.Time) (*account, error) {
	req := wire.LeaseRequest{Who: k.who, Grant: k.grant, Day: a.period, Return: max(a.balance, 0), Extra: a.extra, Kind: k.kind}
	if perMinute(k.kind) {
		req.Day, req.Window = now.UTC().Unix()/86400, a.period
	}
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
		return nil, err
	}
	if perMinute(k.kind) && res.Window != a.period { // the coordinator took no return
		a = &account{period: res.Window}
		l.accts[k] = a
	} else {
		a.balance -= req.Return
		a.extra -= req.Extra
	}
	a.balance += res.Granted
	a.expires, a.unlimited = leaseEnd(res, now), res.Limit == 0
	a.limit, a.budgets, a.set = res.Limit, res.Budgets, set
	if set > 0 && res.Limit != set {
		// The coordinator's policy and this node's netmap disagree:
		// one of them is about to change. Ask again at the next
		// request.
		a.set = 0
	}
	a.full = res.Granted < req.Want
	a.downUntil, a.offline = time.Time{}, false
	return a, nil
}

// leaseEnd is when a lease answered by res, asked for at now, ends on
// this node's clock: Expires less the coordinator's Now after now (so
// the clocks need not agree); a second on when that is not after now.
func leaseEnd(res wire.LeaseResponse, now time.Time) time.Time {
	end := res.Expires
	if !res.Now.IsZero() {
		end = now.Add(res.Expires.Sub(res.Now))
	}
	if !end.After(now) { // the coordinator's clock runs behind
		return now.Add(time.Second)
	}
	return end
}

// onOwn is what a does when the coordinator could not be reached for a
// lease (err): it admits on what it holds, and on its allowance, for
// retryDown without asking again (take); a request that does not fit
// asks again. For rpm and tpm a lease that ended makes the period this
// node's own minute. Called with l.mu held.
func (l *leaseLimiter) onOwn(k acctKey, a *account, set int64, now time.Time, err error) {
	if !a.offline {
		l.log.Warn("coordinator unreachable for a lease; admitting on what the node holds and its allowance", "grant", k.grant, "kind", k.kind, "err", err)
	}
	a.downUntil, a.offline, a.set = now.Add(retryDown), true, set
	if perMinute(k.kind) && !now.Before(a.expires) {
		a.period = now.Unix() / 60
		a.expires = time.Unix((a.period+1)*60, 0)
	}
}

// allow takes a's allowance for the coordinator's outage: once per
// period one more lease size, reported as extra when the coordinator
// answers again. Called with l.mu held.
func (l *leaseLimiter) allow(a *account, size int64) {
	a.allowance, a.extra, a.balance = true, a.extra+size, a.balance+size
}

// exhausted is the refusal of a request needing units of account a (of
// kind) that the coordinator did not lease.
func exhausted(g *policy.GrantRule, kind string, a *account, units int64, now time.Time) *refusal {
	switch kind {
	case "":
		return &refusal{grant: g, reason: reasonDay, want: units, left: max(a.balance, 0),
			retry: time.Unix((a.period+1)*86400, 0).Sub(now)}
	case wire.LeaseRPM, wire.LeaseTPM:
		r := &refusal{grant: g, reason: kindReason(kind), left: max(a.balance, 0), retry: max(a.expires.Sub(now), time.Second)}
		if kind == wire.LeaseTPM {
			r.want = units
		}
		r.resets = now.Add(r.retry)
		return r
	}
	var out *wire.BudgetState
	for i := range a.budgets {
		b := &a.budgets[i]
		if b.Limit > 0 && (out == nil || b.Limit-b.Used < out.Limit-out.Used) {
			out = b
		}
	}
	if out == nil { // the coordinator named none: refuse for a lease's time
		return &refusal{grant: g, reason: reasonBudget, want: units, retry: time.Minute}
	}
	return &refusal{grant: g, reason: reasonBudget, want: units, left: max(out.Limit-out.Used, 0),
		retry: max(out.Resets.Sub(now), time.Second), never: units > out.Limit, budget: out}
}

// unreachable is the refusal of a request needing more units of account
// a than it holds while the coordinator cannot be reached.
func unreachable(g *policy.GrantRule, k acctKey, a *account, units int64, now time.Time) *refusal {
	r := &refusal{grant: g, reason: reasonLeaseDown, limit: kindReason(k.kind), left: max(a.balance, 0), retry: max(a.downUntil.Sub(now), time.Second)}
	if k.kind != wire.LeaseRPM {
		r.want = units
	}
	if !perMinute(k.kind) && k.kind != "" {
		r.budget = &wire.BudgetState{Name: "the " + k.kind + " budgets that count " + k.who + " under " + k.grant, Unit: k.kind}
	}
	return r
}
