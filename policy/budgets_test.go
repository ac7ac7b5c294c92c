package policy

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseBudgets(t *testing.T) {
	src, err := os.ReadFile("testdata/budgets.hujson")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Check("budgets.hujson", src)
	if err != nil {
		t.Fatal(err)
	}
	bs := p.Budgets
	if bs.Currency != "EUR" || bs.Prices["llama"] != (Price{Input: 600_000, Output: 1_800_000}) || bs.Prices["small"] != (Price{Output: 1}) {
		t.Fatalf("currency and prices = %q %+v", bs.Currency, bs.Prices)
	}
	want := []Budget{
		{Index: 0, Pos: Pos{20, 7}, For: "group:ml", Per: PerMonth, Unit: UnitMoney, Warn: 400_000_000, Limit: 500_250_000},
		{Index: 1, Pos: Pos{21, 7}, For: "grants[1]", Each: true, Per: PerDay, Unit: UnitTokens, Limit: 20000},
		{Index: 2, Pos: Pos{22, 7}, For: "bob@example.com", Per: PerWeek, Unit: UnitMoney, Warn: 5_000_000},
	}
	if len(bs.Limits) != len(want) {
		t.Fatalf("got %d budgets", len(bs.Limits))
	}
	for i := range want {
		if bs.Limits[i] != want[i] {
			t.Errorf("budget %d = %+v, want %+v", i, bs.Limits[i], want[i])
		}
	}
	if got := bs.Describe(&bs.Limits[0]); got != "group:ml's budget of 500.25 EUR a month" {
		t.Errorf("Describe = %q", got)
	}
	if got := bs.Describe(&bs.Limits[1]); got != "each person's under grants[1] budget of 20000 tokens a day" {
		t.Errorf("Describe = %q", got)
	}
	if s, n := bs.Limits[1].Counter("user:7"); s != "grants[1]|user:7" || n != "budget:tokens:day" {
		t.Errorf("Counter = %q %q", s, n)
	}

	alice := Identity{Login: "Alice@example.com"}
	if got := ids(p.BudgetsFor(&alice, "grants[0]")); got != "budgets.limits[0]" {
		t.Errorf("alice under grants[0]: %s", got)
	}
	if got := ids(p.BudgetsFor(&alice, "grants[1]")); got != "budgets.limits[0] budgets.limits[1]" {
		t.Errorf("alice under grants[1]: %s", got)
	}
	carol := Identity{Login: "carol@example.com", Groups: []string{"ml-research"}}
	if got := ids(p.BudgetsFor(&carol, "grants[0]")); got != "budgets.limits[0]" {
		t.Errorf("carol (idp:ml-research) under grants[0]: %s", got)
	}
	if got := ids(p.BudgetsFor(&Identity{Tags: []string{"tag:gpu"}}, "grants[0]")); got != "" {
		t.Errorf("a tagged device: %s", got)
	}
	if got := strings.Join(p.Budgets.units(0), ","); got != "money" {
		t.Errorf("units of grants[0] = %s", got)
	}
	if got := strings.Join(p.Budgets.units(1), ","); got != "tokens,money" {
		t.Errorf("units of grants[1] = %s", got)
	}
}

func ids(bs []*Budget) string {
	var s []string
	for _, b := range bs {
		s = append(s, b.ID())
	}
	return strings.Join(s, " ")
}

// TestParseBudgetErrors checks that each mistake in prices and budgets is
// refused at its place with a message that says what to do.
func TestParseBudgetErrors(t *testing.T) {
	grants := `"grants": [{"src": ["group:ml"], "models": ["llama"]}],`
	tests := []struct{ name, src, want string }{
		{"currency not a code", `{"budgets": {"currency": "€"}}`, `1:26: "budgets".currency must be a currency code such as "EUR"`},
		{"price of unknown model", `{` + defs + `"budgets": {"prices": {"gpt": {"input": 1, "output": 1}}}}`, `5:24: "budgets".prices["gpt"]: unknown model "gpt"`},
		{"price as string", `{` + defs + `"budgets": {"prices": {"llama": {"input": "1", "output": 1}}}}`, `5:43: "budgets".prices["llama"].input must be a number, not a string`},
		{"price negative", `{` + defs + `"budgets": {"prices": {"llama": {"input": -1, "output": 1}}}}`, `5:43: "budgets".prices["llama"].input must be an amount 0 or more and at most 1000000.00, with at most 6 decimals and no exponent, not -1`},
		{"price too precise", `{` + defs + `"budgets": {"prices": {"llama": {"input": 0.0000001, "output": 1}}}}`, `with at most 6 decimals and no exponent, not 0.0000001`},
		{"price exponent", `{` + defs + `"budgets": {"prices": {"llama": {"input": 1e2, "output": 1}}}}`, `no exponent, not 1e2`},
		{"price too high", `{` + defs + `"budgets": {"prices": {"llama": {"input": 1000001, "output": 1}}}}`, `at most 1000000.00`},
		{"price half", `{` + defs + `"budgets": {"prices": {"llama": {"input": 1}}}}`, `5:33: "budgets".prices["llama"] needs both "input" and "output"`},
		{"price unknown key", `{` + defs + `"budgets": {"prices": {"llama": {"in": 1}}}}`, `unknown key "in" in "budgets".prices["llama"]; allowed keys are "input", "output"`},
		{"no for", `{"budgets": {"limits": [{"per": "day", "tokens": {"limit": 1}}]}}`, `1:25: budgets.limits[0] has no "for"`},
		{"no per", `{` + defs + `"budgets": {"limits": [{"for": "group:ml", "tokens": {"limit": 1}}]}}`, `5:24: budgets.limits[0] has no "per"; say how often it resets: "day", "week" or "month"`},
		{"bad per", `{` + defs + `"budgets": {"limits": [{"for": "group:ml", "per": "year", "tokens": {"limit": 1}}]}}`, `5:51: budgets.limits[0].per: unknown value "year"; use one of "day", "week", "month"`},
		{"no amount", `{` + defs + `"budgets": {"limits": [{"for": "group:ml", "per": "day"}]}}`, `budgets.limits[0] has no amount; add "tokens": {"limit": N} or "money": {"limit": N}`},
		{"both amounts", `{` + defs + `"budgets": {"currency": "EUR", "limits": [{"for": "group:ml", "per": "day", "tokens": {"limit": 1}, "money": {"limit": 1}}]}}`, `budgets.limits[0] counts both tokens and money`},
		{"no threshold", `{` + defs + `"budgets": {"limits": [{"for": "group:ml", "per": "day", "tokens": {}}]}}`, `5:68: budgets.limits[0].tokens sets no threshold; add "limit"`},
		{"warn above limit", `{` + defs + `"budgets": {"limits": [{"for": "group:ml", "per": "day", "tokens": {"warn": 5, "limit": 5}}]}}`, `budgets.limits[0].tokens: "warn" must be below "limit"`},
		{"tokens fraction", `{` + defs + `"budgets": {"limits": [{"for": "group:ml", "per": "day", "tokens": {"limit": 1.5}}]}}`, `budgets.limits[0].tokens.limit must be a whole number from 1 to 9007199254740992, not 1.5`},
		{"money zero", `{` + defs + `"budgets": {"currency": "EUR", "prices": {"llama": {"input": 1, "output": 1}}, "limits": [{"for": "group:ml", "per": "day", "money": {"limit": 0}}]}}`, `budgets.limits[0].money.limit must be an amount more than 0`},
		{"unknown group", `{` + defs + `"budgets": {"limits": [{"for": "group:ops", "per": "day", "tokens": {"limit": 1}}]}}`, `5:32: budgets.limits[0].for: unknown group "group:ops"`},
		{"not an identity", `{` + defs + `"budgets": {"limits": [{"for": "everyone", "per": "day", "tokens": {"limit": 1}}]}}`, `budgets.limits[0].for: "everyone": not an identity`},
		{"bad grant", `{` + defs + `"budgets": {"limits": [{"for": "grants[x]", "per": "day", "tokens": {"limit": 1}}]}}`, `budgets.limits[0].for: "grants[x]" is not a grant; write grants[N]`},
		{"missing grant", `{` + defs + grants + `"budgets": {"limits": [{"for": "grants[1]", "per": "day", "tokens": {"limit": 1}}]}}`, `5:79: budgets.limits[0].for: there is no grants[1]; the policy has 1 grants`},
		{"each for a person", `{` + defs + `"budgets": {"limits": [{"for": "a@b.c", "each": true, "per": "day", "tokens": {"limit": 1}}]}}`, `"each" gives every member of a group or grant a budget of their own; "a@b.c" is one person`},
		{"duplicate", `{` + defs + `"budgets": {"limits": [{"for": "group:ml", "per": "day", "tokens": {"limit": 1}}, {"for": "group:ml", "per": "day", "tokens": {"warn": 1}}]}}`, `budgets.limits[1] counts the same as budgets.limits[0] (group:ml, tokens a day)`},
		{"money without currency", `{` + defs + `"budgets": {"prices": {"llama": {"input": 1, "output": 1}}, "limits": [{"for": "group:ml", "per": "day", "money": {"limit": 1}}]}}`, `budgets.limits[0] counts money but "budgets" names no currency`},
		{"unpriced model", `{` + defs + `"budgets": {"currency": "EUR", "limits": [{"for": "group:ml", "per": "day", "money": {"limit": 1}}]}}`, `budgets.limits[0] counts money but "llama" has no price under "budgets.prices"; price every model (0 for free)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkRefused(t, tt.src, tt.want) })
	}
}

// TestPriceCost checks that money is counted exactly, rounded up to a
// micro-unit, and saturates instead of overflowing.
func TestPriceCost(t *testing.T) {
	tests := []struct {
		p       Price
		in, out int64
		want    Micros
	}{
		{Price{600_000, 1_800_000}, 1_000_000, 1_000_000, 2_400_000},                          // a million each at 0.60 and 1.80
		{Price{600_000, 1_800_000}, 1, 0, 1},                                                  // 0.6 micro-units round up
		{Price{600_000, 1_800_000}, 5, 5, 12},                                                 // 3 + 9
		{Price{600_000, 1_800_000}, 3, 3, 8},                                                  // 1.8 + 5.4 = 7.2 → 8
		{Price{1, 1}, 999_999, 0, 1},                                                          // a millionth of a micro-unit per token
		{Price{1, 1}, 500_000, 500_000, 1},                                                    // exactly one
		{Price{0, 0}, 1 << 40, 1 << 40, 0},                                                    // free
		{Price{MaxPrice, MaxPrice}, 1 << 40, 1 << 40, 2 * (1 << 40) * (MaxPrice / 1_000_000)}, // beyond 64 bits in between
		{Price{MaxPrice, MaxPrice}, math.MaxInt64, math.MaxInt64, math.MaxInt64},              // saturates
		{Price{600_000, 1_800_000}, -5, -5, 0},                                                // nonsense counts nothing
	}
	for _, tt := range tests {
		if got := tt.p.Cost(tt.in, tt.out); got != tt.want {
			t.Errorf("%+v.Cost(%d, %d) = %d, want %d", tt.p, tt.in, tt.out, got, tt.want)
		}
	}
}

func TestMoneyText(t *testing.T) {
	for _, tt := range []struct {
		s  string
		m  Micros
		ok bool
	}{
		{"0", 0, true}, {"0.60", 600_000, true}, {"500", 500_000_000, true}, {"1.000001", 1_000_001, true},
		{"1.0000001", 0, false}, {"-1", 0, false}, {"1e3", 0, false}, {"1.", 0, false}, {".5", 0, false}, {"", 0, false},
		{"99999999999999999999", 0, false},
	} {
		if m, ok := ParseMoney(tt.s, MaxMoney); m != tt.m || ok != tt.ok {
			t.Errorf("ParseMoney(%q) = %d, %v", tt.s, m, ok)
		}
	}
	for m, want := range map[Micros]string{0: "0.00", 500_000_000: "500.00", 600: "0.0006", 1_234_567: "1.234567", -1_500_000: "-1.50"} {
		if got := FormatMoney(m); got != want {
			t.Errorf("FormatMoney(%d) = %q, want %q", m, got, want)
		}
	}
}

func TestPeriodOf(t *testing.T) {
	at := time.Date(2026, 12, 6, 13, 40, 0, 0, time.UTC) // a Sunday
	for _, tt := range []struct{ per, start, end string }{
		{PerDay, "2026-12-06", "2026-12-07"},
		{PerWeek, "2026-11-30", "2026-12-07"},
		{PerMonth, "2026-12-01", "2027-01-01"},
	} {
		s, e := PeriodOf(tt.per, at)
		if s.Format(time.DateOnly) != tt.start || e.Format(time.DateOnly) != tt.end {
			t.Errorf("%s: %s – %s, want %s – %s", tt.per, s, e, tt.start, tt.end)
		}
	}
	if s, _ := PeriodOf(PerWeek, time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)); s.Day() != 30 {
		t.Errorf("a Monday starts its own week, got %s", s)
	}
}
