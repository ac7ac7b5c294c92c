package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// usageTimeout bounds the status command's question to the coordinator.
const usageTimeout = 5 * time.Second

// fetchUsage asks the coordinator, with the saved login, for the
// person's own use and what remains of their limits and budgets.
func fetchUsage(ctx context.Context, dir client.Dir) (*wire.Usage, error) {
	l, err := dir.LoadLogin()
	if err != nil {
		return nil, err
	}
	c, err := control.New(control.Config{URL: l.Coordinator, Fingerprint: l.Fingerprint, Credential: l.Credential})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, usageTimeout)
	defer cancel()
	u, err := c.Usage(ctx)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// printUsage shows what the person used of their limits and budgets and
// what remains, or why the coordinator could not say.
func printUsage(w io.Writer, u *wire.Usage, err error) {
	fmt.Fprintln(w, "Use:")
	if err != nil {
		fmt.Fprintf(w, "  (unknown: %v)\n", err)
		return
	}
	if len(u.Grants) == 0 && len(u.Budgets) == 0 {
		fmt.Fprintln(w, "  (no grant lets you use a model)")
	}
	for _, g := range u.Grants {
		fmt.Fprintf(w, "  %s (%s): %s\n", g.Grant, strings.Join(g.Models, ", "), grantLine(g))
	}
	for _, b := range u.Budgets {
		fmt.Fprintf(w, "  %s: %s\n", b.Name, budgetLine(&b))
	}
}

// grantLine says a grant's limits and, for tokensPerDay, what is left.
func grantLine(g wire.GrantUsage) string {
	l := g.Limits
	var terms []string
	if l.TokensPerDay > 0 {
		terms = append(terms, fmt.Sprintf("%d of %d tokens used today, %d left (resets %s)",
			g.UsedToday, l.TokensPerDay, max(l.TokensPerDay-g.UsedToday, 0), g.Resets.UTC().Format("2006-01-02 15:04 UTC")))
	}
	for _, t := range []struct {
		n    int
		unit string
	}{{l.RPM, "requests/min"}, {l.TPM, "tokens/min"}, {l.Concurrency, "requests at once per node"}} {
		if t.n > 0 {
			terms = append(terms, fmt.Sprintf("%d %s", t.n, t.unit))
		}
	}
	if l.MaxTokens > 0 {
		terms = append(terms, fmt.Sprintf("answers up to %d tokens", l.MaxTokens))
	}
	if len(terms) == 0 {
		return "no limits"
	}
	return strings.Join(terms, "; ")
}

// budgetLine says what a budget counted, what is left and when it resets.
func budgetLine(b *wire.BudgetState) string {
	s := b.Amount(b.Used) + " used"
	if b.Limit > 0 {
		s += ", " + b.Amount(max(b.Limit-b.Used, 0)) + " left"
		if b.Used >= b.Limit {
			s += " (USED UP: requests it counts are refused)"
		}
	}
	if b.Warn > 0 && b.Used >= b.Warn {
		s += "; past its warning at " + b.Amount(b.Warn)
	}
	return s + "; resets " + b.Resets.UTC().Format("2006-01-02 15:04 UTC")
}
