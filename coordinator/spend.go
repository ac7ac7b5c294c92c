package coordinator

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moatmesh/moat/policy"
)

// Spend metrics. Labels stay few: moat_spend_micros_total is by model
// (those the policy declares; any other name counts as "other", so a
// node cannot grow the series) and currency, and the budget gauges are
// by budget of the policy — a budget of each person is summed over them —
// so groups show through their budgets. Nothing is labelled by person:
// people come and go by the thousand; the usage page and the admin API
// list them.

// modelCost is what one audit record says a request cost.
type modelCost struct {
	model string
	cost  int64
}

// countSpend adds the costs of newly shipped audit records to
// moat_spend_micros_total. A batch a node sends again after a lost
// answer counts again: the counter is for rates, the usage page for
// sums.
func (s *Server) countSpend(ctx context.Context, costs []modelCost) {
	if len(costs) == 0 {
		return
	}
	p := s.PolicyInForce(ctx)
	if p == nil {
		return
	}
	for _, c := range costs {
		model := c.model
		if _, priced := p.Budgets.Prices[model]; !priced {
			model = "other"
		}
		s.mx.spend.WithLabelValues(model, p.Budgets.Currency).Add(float64(c.cost))
	}
}

// budgetCollector reports each budget of the policy in force with its
// period's count, read from the store at each scrape.
func (s *Server) budgetCollector() prometheus.Collector { return budgetGauges{s} }

var (
	budgetUsedDesc = prometheus.NewDesc("moat_budget_used",
		"What a budget of the policy counted in its current period (tokens, or millionths of the currency), summed over everyone for a budget of each person.",
		[]string{"budget", "for", "per", "unit"}, nil)
	budgetLimitDesc = prometheus.NewDesc("moat_budget_threshold",
		"A budget's thresholds: kind=\"limit\" refuses beyond it, kind=\"warn\" warns; per person for a budget of each person.",
		[]string{"budget", "for", "per", "unit", "kind"}, nil)
)

type budgetGauges struct{ s *Server }

func (g budgetGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- budgetUsedDesc
	ch <- budgetLimitDesc
}

func (g budgetGauges) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := g.s.PolicyInForce(ctx)
	if p == nil {
		return
	}
	now := g.s.cfg.Now()
	for i := range p.Budgets.Limits {
		b := &p.Budgets.Limits[i]
		used, err := g.s.budgetUsed(ctx, b, now)
		if err != nil {
			g.s.log.Warn("budget metrics", "budget", b.ID(), "err", err)
			return
		}
		labels := []string{b.ID(), b.For, b.Per, b.Unit}
		ch <- prometheus.MustNewConstMetric(budgetUsedDesc, prometheus.GaugeValue, float64(used), labels...)
		for kind, v := range map[string]int64{"limit": b.Limit, "warn": b.Warn} {
			if v > 0 {
				ch <- prometheus.MustNewConstMetric(budgetLimitDesc, prometheus.GaugeValue, float64(v), append(labels, kind)...)
			}
		}
	}
}

// budgetUsed is what b counted in its period holding now, for everyone
// it counts.
func (s *Server) budgetUsed(ctx context.Context, b *policy.Budget, now time.Time) (int64, error) {
	scope, name := b.Counter("")
	if b.Each {
		scope += "|"
	}
	return s.store.CounterSum(ctx, scope, b.Each, name, periodDay(b, now))
}
