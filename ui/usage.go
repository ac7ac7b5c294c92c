package ui

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// UsageBackend is what the usage pages need.
type UsageBackend interface {
	// Usage reports the organisation's answered use and what it cost
	// over the last days UTC days, today included.
	Usage(ctx context.Context, days int) (*Usage, error)
	// MyUsage reports person userID's own use and what remains of their
	// limits and budgets.
	MyUsage(ctx context.Context, userID string) (*wire.Usage, error)
}

// Usage is the organisation's use and spend over time. Spend is in
// micro-units of Currency, at the policy's prices in force.
type Usage struct {
	// Currency names the policy's currency; "" when it prices nothing.
	Currency string
	// Days holds one entry per UTC day, oldest first.
	Days []UsageDay
	// People (the top spenders), Groups, Models and Nodes total the
	// period, the most spend first (then the most tokens). A person in
	// several groups counts in each.
	People, Groups, Models, Nodes []UsageTotal
	// Budgets are the policy's budgets with the period's counts, summed
	// over everyone a budget of each person counts.
	Budgets []wire.BudgetState
	// Capped says the audit store holds fewer days than asked for (its
	// retention) or more rows than were summed.
	Capped bool
}

// UsageDay is one UTC day of use.
type UsageDay struct {
	Day                    time.Time
	Requests, Tokens, Cost int64
}

// UsageTotal is the use of one person, group, model or node.
type UsageTotal struct {
	Name                   string
	Requests, Tokens, Cost int64
}

// usageDays is how many days the usage page charts.
const usageDays = 30

// usageData is what the usage page shows.
type usageData struct {
	Currency         string
	Tokens, Spend    chart
	Budgets          []budgetRow
	Tables           []totalsTable
	From, To         time.Time
	HasSpend, Capped bool
}

// totalsTable is one table of totals: people, groups, models or nodes.
type totalsTable struct {
	ID, Title, Col string
	Rows           []totalRow
}

type totalRow struct {
	Name, Cost       string
	Requests, Tokens int64
}

func newTotals(id, title, col string, ts []UsageTotal, money *wire.BudgetState) totalsTable {
	t := totalsTable{ID: id, Title: title, Col: col}
	for _, x := range ts {
		t.Rows = append(t.Rows, totalRow{Name: x.Name, Cost: money.Amount(x.Cost), Requests: x.Requests, Tokens: x.Tokens})
	}
	return t
}

// budgetRow is a budget as a table row.
type budgetRow struct {
	wire.BudgetState
	Used, Left, Warn string
	Percent          int  // of the hard threshold (or the soft one), at most 100
	Over, Warned     bool // past the hard or the soft threshold
}

func newBudgetRow(b wire.BudgetState) budgetRow {
	r := budgetRow{BudgetState: b, Used: b.Amount(b.Used)}
	if b.Warn > 0 {
		r.Warn, r.Warned = b.Amount(b.Warn), b.Used >= b.Warn
	}
	top := b.Warn
	if b.Limit > 0 {
		top, r.Left, r.Over = b.Limit, b.Amount(max(b.Limit-b.Used, 0)), b.Used >= b.Limit
	}
	if top > 0 {
		r.Percent = int(min(b.Used*100/top, 100))
	}
	return r
}

func budgetRows(bs []wire.BudgetState) []budgetRow {
	out := make([]budgetRow, len(bs))
	for i, b := range bs {
		out[i] = newBudgetRow(b)
	}
	return out
}

// usage shows the organisation's use and spend over time and the top
// spenders: GET /ui/usage.
func (h *handler) usage(w http.ResponseWriter, r *http.Request, v *Viewer) {
	u, err := h.b.Usage(r.Context(), usageDays)
	if err != nil {
		h.failErr(w, v, "sum the use", err)
		return
	}
	money := &wire.BudgetState{Unit: wire.LeaseMoney, Currency: u.Currency}
	d := usageData{Currency: u.Currency, Budgets: budgetRows(u.Budgets), HasSpend: u.Currency != "", Capped: u.Capped,
		Tables: []totalsTable{
			newTotals("people", "Top spenders", "Person", u.People, money),
			newTotals("groups", "Groups", "Group", u.Groups, money),
			newTotals("models", "Models", "Model", u.Models, money),
			newTotals("nodes", "Nodes", "Node", u.Nodes, money),
		}}
	var tokens, spend []int64
	var labels, spendLabels []string
	for _, day := range u.Days {
		tokens, spend = append(tokens, day.Tokens), append(spend, day.Cost)
		date := day.Day.Format(time.DateOnly)
		labels = append(labels, date+": "+strconv.FormatInt(day.Tokens, 10)+" tokens in "+strconv.FormatInt(day.Requests, 10)+" requests")
		spendLabels = append(spendLabels, date+": "+money.Amount(day.Cost))
	}
	if len(u.Days) > 0 {
		d.From, d.To = u.Days[0].Day, u.Days[len(u.Days)-1].Day
	}
	d.Tokens, d.Spend = newSeries(tokens, labels), newSeries(spend, spendLabels)
	h.render(w, http.StatusOK, "usage.html", page{Title: "Usage", Nav: "usage", Viewer: v, Data: d})
}

func (h *handler) usageRoutes() {
	h.mux.HandleFunc("GET /ui/usage", h.signedIn(readers, h.usage))
}
