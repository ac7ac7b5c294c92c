package guard

import (
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// limiter keeps the counters behind the grants' limits: the seam between
// the guard's admission and where the counts live. The node's own
// counters (localLimiter) are one; a limiter enforcing leases of an
// organisation-wide budget can take its place without the guard
// changing. A request goes through it in three steps:
//
//  1. hold, before its body is read: a slot, refused when none of the
//     caller's grants could admit one more request now;
//  2. reserve, once the request's worst case is known: it is admitted
//     only if that many tokens fit what its grant has left, and they are
//     counted as used until it ends;
//  3. settle, when it ends: the real use replaces the reservation.
//
// Every method is safe for concurrent use.
type limiter interface {
	// hold takes a slot for a request of who whose body is still to be
	// read, if one of grants (all those who holds here) could admit one
	// more request at now beside the other slots held; else it says why
	// not. A slot counts against concurrency and requests a minute until
	// reserve turns it into an admission or unhold gives it back.
	hold(who string, grants []*policy.GrantRule, now time.Time) *refusal
	// unhold gives back a slot taken by hold.
	unhold(who string)
	// reserve admits one request of who under g that may use up to
	// tokens (in and out), priced at price (for money budgets), giving
	// back its slot when held, or says why the request does not fit.
	reserve(who string, g *policy.GrantRule, tokens int64, price policy.Price, now time.Time, held bool) (reservation, *refusal)
	// keep drops the counters of identities not in keep that have nothing
	// in flight.
	keep(keep map[string]bool)
}

// reservation is one admitted request's hold on its grant's limits.
type reservation interface {
	// budget is the most tokens the request may use before its stream is
	// cut (what its limits had left when it was admitted), and the limit
	// that sets it; -1 when no limit counts tokens.
	budget() (int64, string)
	// settle ends the request, charging the prompt (in) and answer (out)
	// tokens it used in place of the reservation. Called once.
	settle(in, out int64)
}

// refusal is why a request may not start now.
type refusal struct {
	grant  *policy.GrantRule // whose limit refuses
	reason string            // reasonRPM, reasonTPM, reasonConcurrency, reasonDay, reasonLeaseDown or reasonBudget
	// retry is when the request could fit; 0 with never.
	retry time.Duration
	// For the token limits: the tokens the request reserves, and those
	// the limit had left (used and reserved ones taken off).
	want, left int64
	// never: the request reserves more than the limit allows at all.
	never bool
	// budget is the budget that refuses (reasonBudget): want and left
	// are then in its unit.
	budget *wire.BudgetState
	// limit is, for reasonLeaseDown, the limit that ran out while the
	// coordinator could not be reached (reasonRPM, reasonTPM, reasonDay
	// or reasonBudget).
	limit string
	// resets is when the count of a limit counted per minute for the
	// organisation starts again; zero when retry says it all.
	resets time.Time
}
