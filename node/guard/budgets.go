package guard

import (
	"fmt"
	"net/http"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// headerBudget warns the caller that a budget counting the request has
// passed its soft threshold: one value per budget, e.g. "group:ml's
// budget of 500.00 EUR a month: 412.50 EUR used, warn at 400.00 EUR;
// resets 2027-01-01T00:00:00Z". The audit record's budgetWarnings say the
// same.
const headerBudget = "X-Moat-Budget-Warning"

// amount formats n of b's unit: "1200 tokens", "0.0123 EUR".
func amount(b *wire.BudgetState, n int64) string { return b.Amount(n) }

// budgetWarning says that b passed its soft threshold.
func budgetWarning(b *wire.BudgetState) string {
	return fmt.Sprintf("%s: %s used, warn at %s; resets %s", b.Name, amount(b, b.Used), amount(b, b.Warn), b.Resets.UTC().Format(time.RFC3339))
}

// warnBudgets sets headerBudget for the budgets past their soft
// threshold that count the call, and keeps them for its audit record.
func (c *call) warnBudgets(h http.Header) {
	t, ok := c.ticket.(*leaseTicket)
	if !ok {
		return
	}
	for _, b := range t.warnings() {
		w := budgetWarning(&b)
		h.Add(headerBudget, w)
		c.budgetWarnings = append(c.budgetWarnings, w)
	}
}

// budgetMessage says which budget refuses a request, what it needed and
// when the budget resets.
func budgetMessage(who *caller, r *refusal) string {
	b := r.budget
	if r.reason == reasonLeaseDown {
		return fmt.Sprintf("%s is counted by the coordinator, which this node cannot reach (its leases and its allowance for the outage are used up); retry in %s",
			b.Name, r.retry.Round(time.Second)+time.Second)
	}
	if r.never {
		return fmt.Sprintf("%s: this request may use up to %s (its prompt and every answer at its full length), more than %s allows at all: ask for shorter answers (max_tokens) or fewer",
			who.who(), amount(b, r.want), b.Name)
	}
	return fmt.Sprintf("%s is used up for %s: %s used, %s left and this request may use up to %s (its prompt and every answer at its full length); it resets at %s, retry then",
		b.Name, who.who(), amount(b, b.Used), amount(b, r.left), amount(b, r.want), b.Resets.UTC().Format("2006-01-02 15:04 UTC"))
}
