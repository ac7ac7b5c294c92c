package guard

import (
	"math"
	"math/bits"

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
		if p.unlimited || p.kind == wire.LeaseRPM { // rpm counts requests
			continue
		}
		own, reason := p.reserved+p.beyond, kindReason(p.kind)
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
	t.give(func(p *leasePart) int64 {
		switch p.kind {
		case wire.LeaseRPM:
			return p.reserved // the request, answered
		case wire.LeaseMoney:
			return t.price.Cost(in, out)
		}
		return in + out
	})
}

// release gives back every part of a request that was not admitted.
func (t *leaseTicket) release() {
	t.give(func(*leasePart) int64 { return 0 })
}

// give ends the request's parts, charging each account used(part) in
// place of what the part reserved.
func (t *leaseTicket) give(used func(*leasePart) int64) {
	t.l.mu.Lock()
	defer t.l.mu.Unlock()
	for i := range t.parts {
		p := &t.parts[i]
		if p.a == nil {
			continue
		}
		p.a.balance += p.reserved - used(p)
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
