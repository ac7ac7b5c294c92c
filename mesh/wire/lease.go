package wire

import (
	"strconv"
	"strings"
	"time"
)

// LeaseRequest asks the coordinator for units of one person's limit
// under one grant (tokensPerDay, rpm, tpm or the budgets that count
// them; see Kind), POST /api/v1/node/lease with the node's credential.
// The coordinator holds the organisation's counter: it charges a lease
// when it grants it and takes back what the node returns, so every node
// serving the grant draws on one limit.
type LeaseRequest struct {
	// Who is the guard's limit key: "user:ID" for a person,
	// "device:ID" for a tagged device.
	Who string `json:"who"`
	// Grant is the grant's ID, "grants[N]".
	Grant string `json:"grant"`
	// Day is the UTC day number (Unix seconds / 86400) the tokens count
	// for.
	Day int64 `json:"day"`
	// Want is the tokens asked for; 0 only returns.
	Want int64 `json:"want"`
	// Return is the unused part of the node's earlier leases of the same
	// day, given back.
	Return int64 `json:"return,omitempty"`
	// Extra is what the node admitted on its own allowance while it
	// could not reach the coordinator, charged now whatever is left.
	Extra int64 `json:"extra,omitempty"`
	// Kind is "" for the grant's tokensPerDay, LeaseTokens or LeaseMoney
	// for the budgets of that unit that count Who under Grant (the
	// coordinator finds them), LeaseRPM or LeaseTPM for the grant's rpm
	// or tpm. A budget lease's Day is the UTC day the request was
	// admitted, and counts in the budget's period holding it. An rpm or
	// tpm lease counts in the coordinator's current UTC minute, whatever
	// Day says (see Window).
	Kind string `json:"kind,omitempty"`
	// Window is, for LeaseRPM and LeaseTPM, the minute (LeaseResponse.
	// Window) of the lease that Return and Extra belong to; the
	// coordinator takes them only while that minute lasts (0: none).
	Window int64 `json:"window,omitempty"`
}

// LeaseResponse is the coordinator's answer to a LeaseRequest.
type LeaseResponse struct {
	// Granted is the tokens leased: Want, or less (0) when the quota has
	// fewer left.
	Granted int64 `json:"granted"`
	// Used is the organisation's count for the day after this lease.
	Used int64 `json:"used"`
	// Limit is the grant's tokensPerDay in the coordinator's policy; 0:
	// the grant sets none (the node needs no lease).
	Limit int64 `json:"limit"`
	// Expires is when the node must stop admitting on the lease and
	// return what it did not use.
	Expires time.Time `json:"expires"`
	// Budgets are, for a budget lease, the budgets that counted it, after
	// it; Limit is then the smallest threshold among them (0: none applies).
	Budgets []BudgetState `json:"budgets,omitempty"`
	// Window is, for an rpm or tpm lease, the UTC minute (Unix seconds /
	// 60, on the coordinator's clock) it counts in; Expires is that
	// minute's end.
	Window int64 `json:"window,omitempty"`
	// Now is the coordinator's clock when it answered, so that a node
	// times the lease by its own clock (Expires - Now after it asked);
	// zero from coordinators before it: then Expires is taken as it is.
	Now time.Time `json:"now,omitzero"`
}

// Lease kinds: what a LeaseRequest counts. The empty kind is the grant's
// tokensPerDay.
const (
	LeaseTokens = "tokens" // the token budgets that count the person under the grant
	LeaseMoney  = "money"  // the money budgets, in micro-units of the policy's currency
	LeaseRPM    = "rpm"    // the grant's requests per UTC minute
	LeaseTPM    = "tpm"    // the grant's tokens (in+out) per UTC minute
)

// BudgetState is one budget's count for the caller of a lease, after it.
type BudgetState struct {
	// ID is the budget's place in the policy, "budgets.limits[N]"; Name
	// says it for people ("group:ml's budget of 500.00 EUR a month").
	ID   string `json:"id"`
	Name string `json:"name"`
	// Unit is "tokens" or "money"; money amounts are micro-units of
	// Currency.
	Unit     string `json:"unit"`
	Currency string `json:"currency,omitempty"`
	// Used is the period's count; Warn and Limit the soft and hard
	// thresholds (0: none).
	Used  int64 `json:"used"`
	Warn  int64 `json:"warn,omitempty"`
	Limit int64 `json:"limit,omitempty"`
	// Resets is when the period ends and the count starts again from 0.
	Resets time.Time `json:"resets"`
}

// Usage is what GET /api/v1/usage answers a person's device: their own
// use and what remains of their limits and budgets, as the coordinator
// counts them.
type Usage struct {
	// Grants are the grants the person may use models under, with their
	// limits and, for tokensPerDay, today's count.
	Grants []GrantUsage `json:"grants,omitempty"`
	// Budgets are the budgets that count the person's use, with their
	// period's counts.
	Budgets []BudgetState `json:"budgets,omitempty"`
}

// GrantUsage is one grant's limits for the person and what they used of
// the organisation-wide one today.
type GrantUsage struct {
	Grant  string   `json:"grant"`  // "grants[N]"
	Models []string `json:"models"` // the models the person may use under it
	Limits Limits   `json:"limits"`
	// UsedToday counts tokensPerDay (tokens leased to nodes less those
	// returned) in the UTC day up to now; 0 without tokensPerDay.
	UsedToday int64 `json:"usedToday"`
	// Resets is when the day's count starts again.
	Resets time.Time `json:"resets"`
}

// Amount formats n of b's unit for people: "1200 tokens", "0.0123 EUR"
// (micro-units with at least two decimals, as the policy writes them).
func (b *BudgetState) Amount(n int64) string {
	if b.Unit != LeaseMoney {
		return strconv.FormatInt(n, 10) + " tokens"
	}
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	frac := strings.TrimRight(strconv.FormatInt(1_000_000+n%1_000_000, 10)[1:], "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return sign + strconv.FormatInt(n/1_000_000, 10) + "." + frac + " " + b.Currency
}
