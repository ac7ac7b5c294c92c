package wire

import "testing"

func TestBudgetAmount(t *testing.T) {
	money := BudgetState{Unit: LeaseMoney, Currency: "EUR"}
	tokens := BudgetState{Unit: LeaseTokens}
	for _, tt := range []struct {
		b    BudgetState
		n    int64
		want string
	}{
		{money, 500_000_000, "500.00 EUR"}, {money, 600, "0.0006 EUR"}, {money, 1_234_567, "1.234567 EUR"},
		{money, 0, "0.00 EUR"}, {money, -1_500_000, "-1.50 EUR"}, {tokens, 1200, "1200 tokens"},
	} {
		if got := tt.b.Amount(tt.n); got != tt.want {
			t.Errorf("Amount(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
