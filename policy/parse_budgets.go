package policy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tailscale/hujson"
)

// Bounds of the budgets section.
const (
	// MaxPrice is the highest price per million tokens, in micro-units
	// (one million units of the currency).
	MaxPrice Micros = 1_000_000 * MicrosPerUnit
	// MaxMoney is the largest money amount of a budget, in micro-units.
	MaxMoney Micros = 1_000_000_000_000 * MicrosPerUnit
	// MaxBudgetTokens is the largest token amount of a budget.
	MaxBudgetTokens = 1 << 53
)

// budgets decodes the "budgets" section.
func (d *decoder) budgets(v *hujson.Value, p *Policy) {
	const what = `"budgets"`
	d.fields(v, what,
		field{"currency", func(v *hujson.Value) { p.Budgets.Currency = d.currency(v, what+".currency") }},
		field{"prices", func(v *hujson.Value) { p.Budgets.Prices = d.prices(v, what+".prices") }},
		field{"limits", func(v *hujson.Value) {
			d.array(v, what+".limits", func(i int, el *hujson.Value) {
				b := Budget{Index: i, Pos: d.lines.pos(el.StartOffset)}
				if d.budget(el, &b) {
					p.Budgets.Limits = append(p.Budgets.Limits, b)
				}
			})
		}},
	)
}

func (d *decoder) currency(v *hujson.Value, what string) string {
	s, ok := d.str(v, what)
	if ok && (s == "" || len(s) > 8 || !letters(s)) {
		d.errorf(v.StartOffset, "%s must be a currency code such as \"EUR\" or \"USD\" (letters, at most 8), not %q", what, s)
		return ""
	}
	return s
}

func letters(s string) bool {
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// prices decodes {"MODEL": {"input": N, "output": N}, …}.
func (d *decoder) prices(v *hujson.Value, what string) map[string]Price {
	out := map[string]Price{}
	d.entries(v, what, func(name string, key, val *hujson.Value) {
		w := fmt.Sprintf("%s[%q]", what, name)
		d.refer(refModel, name, key, w)
		var pr Price
		var has int
		money := func(name string, set *Micros) field {
			return field{name, func(v *hujson.Value) {
				has++
				*set, _ = d.money(v, w+"."+name, MaxPrice, true)
			}}
		}
		d.fields(val, w, money("input", &pr.Input), money("output", &pr.Output))
		if _, ok := val.Value.(*hujson.Object); ok && has < 2 {
			d.errorf(val.StartOffset, `%s needs both "input" and "output": the price of a million prompt and of a million answer tokens (0 for free)`, w)
		}
		out[name] = pr
	})
	return out
}

// money decodes a decimal number of currency units into micro-units.
func (d *decoder) money(v *hujson.Value, what string, max Micros, zero bool) (Micros, bool) {
	lit, ok := v.Value.(hujson.Literal)
	if !ok || lit.Kind() != '0' {
		d.errorf(v.StartOffset, "%s must be a number, not %s", what, kindName(v))
		return 0, false
	}
	m, ok := ParseMoney(string(lit), max)
	if ok && (m > 0 || zero) {
		return m, true
	}
	least := "more than 0"
	if zero {
		least = "0 or more"
	}
	d.errorf(v.StartOffset, "%s must be an amount %s and at most %s, with at most 6 decimals and no exponent, not %s", what, least, FormatMoney(max), lit)
	return 0, false
}

// budget decodes one entry of "budgets.limits"; false when it is unusable.
func (d *decoder) budget(v *hujson.Value, b *Budget) bool {
	what := b.ID()
	var amounts []string
	var hasFor, hasPer bool
	d.fields(v, what,
		field{"for", func(v *hujson.Value) { hasFor, b.For = true, d.budgetScope(v, what+".for") }},
		field{"each", func(v *hujson.Value) { b.Each = d.boolean(v, what+".each") }},
		field{"per", func(v *hujson.Value) { hasPer = true; b.Per, _ = d.enum(v, what+".per", PerDay, PerWeek, PerMonth) }},
		field{UnitTokens, func(v *hujson.Value) {
			amounts = append(amounts, UnitTokens)
			b.Unit = UnitTokens
			b.Warn, b.Limit = d.thresholds(v, what+"."+UnitTokens, false)
		}},
		field{UnitMoney, func(v *hujson.Value) {
			amounts = append(amounts, UnitMoney)
			b.Unit = UnitMoney
			b.Warn, b.Limit = d.thresholds(v, what+"."+UnitMoney, true)
		}},
	)
	if _, ok := v.Value.(*hujson.Object); !ok {
		return false
	}
	switch {
	case !hasFor:
		d.errorf(v.StartOffset, `%s has no "for"; say whose budget it is, e.g. "for": "group:ml"`, what)
	case !hasPer:
		d.errorf(v.StartOffset, `%s has no "per"; say how often it resets: "day", "week" or "month"`, what)
	case len(amounts) == 0:
		d.errorf(v.StartOffset, `%s has no amount; add "tokens": {"limit": N} or "money": {"limit": N}`, what)
	case len(amounts) == 2:
		d.errorf(v.StartOffset, `%s counts both tokens and money; a budget counts one of them, so write two budgets`, what)
	case b.Each && strings.Contains(b.For, "@"):
		d.errorf(v.StartOffset, `%s: "each" gives every member of a group or grant a budget of their own; %q is one person, so leave "each" out`, what, b.For)
	case b.For == "" || b.Per == "" || b.Warn == 0 && b.Limit == 0:
		return false // reported where the value is
	default:
		return true
	}
	return false
}

// budgetScope decodes "for": an identity or a grant "grants[N]".
func (d *decoder) budgetScope(v *hujson.Value, what string) string {
	s, ok := d.str(v, what)
	if !ok {
		return ""
	}
	if n, isGrant := strings.CutPrefix(s, "grants["); isGrant {
		if i, err := strconv.Atoi(strings.TrimSuffix(n, "]")); err != nil || i < 0 || !strings.HasSuffix(n, "]") || strconv.Itoa(i)+"]" != n {
			d.errorf(v.StartOffset, "%s: %q is not a grant; write grants[N] with N the grant's position in \"grants\", from 0", what, s)
			return ""
		}
		return s
	}
	if !d.identity(s, v, what, true) {
		return ""
	}
	return s
}

// thresholds decodes {"warn": N, "limit": N} in tokens or money.
func (d *decoder) thresholds(v *hujson.Value, what string, money bool) (warn, limit int64) {
	amount := func(name string, set *int64) field {
		return field{name, func(v *hujson.Value) {
			if money {
				*set, _ = d.money(v, what+"."+name, MaxMoney, false)
			} else {
				*set, _ = d.positive(v, what+"."+name, MaxBudgetTokens)
			}
		}}
	}
	d.fields(v, what, amount("warn", &warn), amount("limit", &limit))
	if _, ok := v.Value.(*hujson.Object); !ok {
		return 0, 0
	}
	switch {
	case warn == 0 && limit == 0:
		d.errorf(v.StartOffset, `%s sets no threshold; add "limit" (requests are refused beyond it) and/or "warn" (answers say it was passed)`, what)
	case limit > 0 && warn >= limit:
		d.errorf(v.StartOffset, `%s: "warn" must be below "limit", or there is nothing to warn of`, what)
		return 0, 0
	}
	return warn, limit
}

// checkBudgets checks what the budgets refer to once the whole file is
// read: grants that exist, a currency and prices for money, one budget per
// counter.
func (d *decoder) checkBudgets(p *Policy) {
	bs := &p.Budgets
	seen := map[string]int{}
	money := false
	for i := range bs.Limits {
		b := &bs.Limits[i]
		if n, isGrant := strings.CutPrefix(b.For, "grants["); isGrant {
			if gi, _ := strconv.Atoi(strings.TrimSuffix(n, "]")); gi >= len(p.Grants) {
				d.errorAt(b.Pos, "%s.for: there is no %s; the policy has %d grants, from grants[0]", b.ID(), b.For, len(p.Grants))
			}
		}
		scope, name := b.Counter("")
		key := scope + "\x00" + name + "\x00" + strconv.FormatBool(b.Each)
		if first, dup := seen[key]; dup {
			d.errorAt(b.Pos, "%s counts the same as budgets.limits[%d] (%s, %s a %s); merge them into one with \"warn\" and \"limit\"", b.ID(), first, b.For, b.Unit, b.Per)
		}
		seen[key] = b.Index
		if b.Unit == UnitMoney && !money {
			money = true
			d.checkPriced(p, b)
		}
	}
}

// checkPriced reports, at the first money budget b, a missing currency or
// models without a price: a model that cost nothing by omission would let
// anyone spend around a money budget.
func (d *decoder) checkPriced(p *Policy, b *Budget) {
	if p.Budgets.Currency == "" {
		d.errorAt(b.Pos, `%s counts money but "budgets" names no currency; add "currency": "EUR" (or yours)`, b.ID())
	}
	var unpriced []string
	for _, m := range p.Models {
		if _, ok := p.Budgets.Prices[m.Name]; !ok {
			unpriced = append(unpriced, m.Name)
		}
	}
	if len(unpriced) > 0 {
		d.errorAt(b.Pos, `%s counts money but %s has no price under "budgets.prices"; price every model (0 for free)`, b.ID(), quoteList(unpriced))
	}
}

func (d *decoder) errorAt(p Pos, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)})
}
