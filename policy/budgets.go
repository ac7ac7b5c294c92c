package policy

import (
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Budgets is the policy's "budgets" section: what tokens cost and how
// much of them or of money people, groups and grants may spend in a
// day, week or month (see docs/policy.md, "Budgets"). The zero value
// sets no prices and no budgets.
type Budgets struct {
	// Currency names the unit of every price and money amount, e.g.
	// "EUR"; "" when the section names none (then no budget counts money).
	Currency string
	// Prices maps a model name to what its tokens cost. A model not
	// listed costs nothing; a policy with money budgets must price every
	// model.
	Prices map[string]Price
	// Limits are the budgets in file order; Limits[i].ID() is
	// "budgets.limits[i]".
	Limits []Budget
}

// Micros is an amount of money in millionths of the policy's currency.
// Money is always counted in whole micro-units, never in floating point.
type Micros = int64

// MicrosPerUnit is how many micro-units make one unit of the currency.
const MicrosPerUnit = 1_000_000

// Price is what a model's tokens cost, in micro-units per million tokens.
type Price struct {
	Input  Micros
	Output Micros
}

// Cost is the price of in prompt and out answer tokens in micro-units,
// rounded up to a whole micro-unit, exactly (no floating point; it
// saturates at math.MaxInt64).
func (p Price) Cost(in, out int64) Micros {
	hiA, loA := bits.Mul64(uint64(max(in, 0)), uint64(max(p.Input, 0)))
	hiB, loB := bits.Mul64(uint64(max(out, 0)), uint64(max(p.Output, 0)))
	lo, carry := bits.Add64(loA, loB, 0)
	hi, overflow := bits.Add64(hiA, hiB, carry)
	if overflow != 0 || hi >= 1_000_000 {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, 1_000_000)
	if r > 0 {
		q++
	}
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}

// Max is the larger of the two prices: what one token costs at most.
func (p Price) Max() Micros { return max(p.Input, p.Output) }

// Budget units and periods.
const (
	UnitTokens = "tokens"
	UnitMoney  = "money"

	PerDay   = "day"
	PerWeek  = "week"
	PerMonth = "month"
)

// Budget is one entry of "budgets.limits": a cap on the tokens or money
// one scope may spend in a period, with a soft and a hard threshold.
type Budget struct {
	Index int
	Pos   Pos
	// For is the scope as written: a login, "group:NAME", "idp:NAME",
	// "autogroup:member", "tag:NAME" or a grant "grants[N]".
	For string
	// Each gives every person (or tagged device) of For a budget of their
	// own; without it they share one.
	Each bool
	// Per is PerDay, PerWeek (from Monday) or PerMonth, in UTC.
	Per string
	// Unit is UnitTokens or UnitMoney (amounts in Micros).
	Unit string
	// Warn is the soft threshold (answers and audit records say it was
	// passed) and Limit the hard one (requests are refused); 0: none. At
	// least one is set; Warn < Limit when both are.
	Warn, Limit int64
}

// ID names the budget in lease requests and explanations.
func (b *Budget) ID() string { return "budgets.limits[" + strconv.Itoa(b.Index) + "]" }

// Counter names the organisation's counter of b for the caller with the
// limit key who ("user:ID", "device:ID"): its scope and its name. Budgets
// with the same scope, unit and period share one counter (Parse refuses
// two such budgets).
func (b *Budget) Counter(who string) (scope, name string) {
	scope = strings.ToLower(b.For)
	if b.Each {
		scope += "|" + who
	}
	return scope, "budget:" + b.Unit + ":" + b.Per
}

// Threshold is the smallest threshold b sets: the hard one, else the soft.
func (b *Budget) Threshold() int64 {
	if b.Limit > 0 {
		return b.Limit
	}
	return b.Warn
}

// Period returns the start of b's period holding t and when it ends
// (the next one starts), in UTC.
func (b *Budget) Period(t time.Time) (start, end time.Time) { return PeriodOf(b.Per, t) }

// PeriodOf returns the start and end of the period per (PerDay, PerWeek
// or PerMonth) holding t, in UTC. Weeks start on Monday.
func PeriodOf(per string, t time.Time) (start, end time.Time) {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch per {
	case PerWeek:
		start = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
		return start, start.AddDate(0, 0, 7)
	case PerMonth:
		start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return start, start.AddDate(0, 1, 0)
	}
	return day, day.AddDate(0, 0, 1)
}

// Amount formats n of b's unit: "1200 tokens", "500.00 EUR".
func (bs *Budgets) Amount(unit string, n int64) string {
	if unit == UnitMoney {
		return FormatMoney(n) + " " + bs.Currency
	}
	return strconv.FormatInt(n, 10) + " tokens"
}

// Describe names b for people: "group:ml's budget of 500.00 EUR a month".
func (bs *Budgets) Describe(b *Budget) string {
	who := b.For + "'s"
	if b.Each {
		who = "each person's of " + b.For
		if strings.HasPrefix(b.For, "grants[") {
			who = "each person's under " + b.For
		}
	}
	return who + " budget of " + bs.Amount(b.Unit, b.Threshold()) + " a " + b.Per
}

// FormatMoney formats micro-units with at least two decimals and no
// trailing zeros beyond them: 500000000 → "500.00", 600 → "0.0006".
func FormatMoney(m Micros) string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	frac := strings.TrimRight(strconv.FormatInt(1_000_000+m%MicrosPerUnit, 10)[1:], "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return sign + strconv.FormatInt(m/MicrosPerUnit, 10) + "." + frac
}

// ParseMoney reads a decimal amount such as "0.60" or "500" into
// micro-units: digits, at most six after the point, no sign or exponent,
// at most max.
func ParseMoney(s string, max Micros) (Micros, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 6 || strings.Contains(s, ".") && frac == "" || !digits(whole) || !digits(frac) {
		return 0, false
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > max/MicrosPerUnit {
		return 0, false
	}
	f, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	if m := w*MicrosPerUnit + f; m <= max {
		return m, true
	}
	return 0, false
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// For returns the budgets that count a request of id under grant (its
// ID), in file order.
func (p *Policy) BudgetsFor(id *Identity, grant string) []*Budget {
	if len(p.Budgets.Limits) == 0 {
		return nil
	}
	names := p.principals(id)
	var out []*Budget
	for i := range p.Budgets.Limits {
		b := &p.Budgets.Limits[i]
		if b.For == grant || containsFold(names, b.For) {
			out = append(out, b)
		}
	}
	return out
}

func containsFold(names []string, s string) bool {
	for _, n := range names {
		if strings.EqualFold(n, s) {
			return true
		}
	}
	return false
}

// units returns the units the budgets may count for requests under the
// grant with index gi: a node leases those for every request of it.
func (bs *Budgets) units(gi int) []string {
	var out []string
	for _, unit := range []string{UnitTokens, UnitMoney} {
		for i := range bs.Limits {
			b := &bs.Limits[i]
			if b.Unit == unit && (!strings.HasPrefix(b.For, "grants[") || b.For == "grants["+strconv.Itoa(gi)+"]") {
				out = append(out, unit)
				break
			}
		}
	}
	return out
}

// GroupsOf returns the policy groups ("group:NAME") id belongs to,
// directly or through other groups and IdP groups, sorted.
func (p *Policy) GroupsOf(id *Identity) []string {
	var out []string
	for _, n := range p.principals(id) {
		if strings.HasPrefix(n, "group:") {
			out = append(out, n)
		}
	}
	return out
}
