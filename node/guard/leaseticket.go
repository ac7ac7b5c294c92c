package guard

import (
	"math"
	"math/bits"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// leasePart is what one admitted request took of one account.
type leasePart struct {
	a                *account // nil when unlimited
	kind             string   // the account's kind (acctKey.kind)
	reserved, beyond int64    // units
	unlimited        bool
	// offline: admitted while the coordinator could not be reached.
	offline bool
	// warn are the budgets of the account past their soft threshold when
	// the request was admitted.
	warn []wire.BudgetState
}

// leaseTicket is a reservation of the lease limiter: the request's parts
// of its accounts and its local reservation.
type leaseTicket struct {
	l     *leaseLimiter
	local reservation // rpm, tpm, concurrency
	parts []leasePart
	price policy.Price // of the request's model, for money
}

func (t *leaseTicket) budget() (int64, string) {
	b, why := t.local.budget()
	for _, p := range t.parts {
		if p.unlimited {
			continue
		}
		own, reason := p.reserved+p.beyond, reasonDay
		if p.kind != "" {
			reason = reasonBudget
		}
		if p.kind == wire.LeaseMoney {
			own = tokensFor(own, t.price)
		}
		if b < 0 || own < b {
			b, why = own, reason
		}
	}
	return b, why
}

func (t *leaseTicket) settle(in, out int64) {
	if t.local != nil {
		t.local.settle(in, out)
	}
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	for _, p := range t.parts {
		if p.a == nil {
			continue
		}
		used := in + out
		if p.kind == wire.LeaseMoney {
			used = t.price.Cost(in, out)
		}
		p.a.balance += p.reserved - used
		p.a.exposure -= p.beyond
	}
}

// offline reports whether a part of the request was admitted while the
// coordinator could not be reached.
func (t *leaseTicket) offline() bool {
	for _, p := range t.parts {
		if p.offline {
			return true
		}
	}
	return false
}

// warnings are the budgets past their soft threshold that count the
// request.
func (t *leaseTicket) warnings() []wire.BudgetState {
	var out []wire.BudgetState
	for _, p := range t.parts {
		out = append(out, p.warn...)
	}
	return out
}

// warnings returns the budgets of states past their soft threshold.
func warnings(states []wire.BudgetState) []wire.BudgetState {
	var out []wire.BudgetState
	for _, b := range states {
		if b.Warn > 0 && b.Used >= b.Warn {
			out = append(out, b)
		}
	}
	return out
}

// tokensFor is how many tokens at most m micro-units pay for at price's
// dearer rate (rounded down); unlimited when tokens are free.
func tokensFor(m int64, price policy.Price) int64 {
	per := price.Max()
	if per <= 0 {
		return math.MaxInt64
	}
	hi, lo := bits.Mul64(uint64(max(m, 0)), 1_000_000)
	if hi >= uint64(per) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(per))
	return int64(min(q, math.MaxInt64))
}

// exhausted is the refusal of a request needing units of account a (of
// kind) that the coordinator did not lease.
func exhausted(g *policy.GrantRule, kind string, a *account, units int64, now time.Time) *refusal {
	if kind == "" {
		return &refusal{grant: g, reason: reasonDay, want: units, left: max(a.balance, 0),
			retry: time.Unix((a.day+1)*86400, 0).Sub(now)}
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
