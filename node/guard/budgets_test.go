package guard

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// budgetLeases is the coordinator's budget leases in process: one money
// budget (a warn and a limit, in micro-units) counting every caller, and
// no tokensPerDay. down makes it unreachable.
type budgetLeases struct {
	warn, limit int64
	resets      time.Time
	down        atomic.Bool
	mu          sync.Mutex
	used        int64
}

func (s *budgetLeases) Lease(ctx context.Context, req wire.LeaseRequest) (wire.LeaseResponse, error) {
	if s.down.Load() {
		return wire.LeaseResponse{}, errors.New("coordinator unreachable")
	}
	res := wire.LeaseResponse{Expires: time.Now().Add(time.Minute)}
	if req.Kind != wire.LeaseMoney {
		return res, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := max(s.used-req.Return, 0) + req.Extra
	res.Granted = max(min(req.Want, s.limit-u), 0)
	s.used = u + res.Granted
	res.Limit = s.limit
	res.Budgets = []wire.BudgetState{{ID: "budgets.limits[0]", Name: "group:ml's budget of 0.0002 EUR a month", Unit: wire.LeaseMoney, Currency: "EUR",
		Used: s.used, Warn: s.warn, Limit: s.limit, Resets: s.resets}}
	return res, nil
}

// TestBudgetThroughGuard: requests priced at the model's price draw on a
// money budget leased from the coordinator; past its soft threshold the
// answers and audit records warn, at its hard threshold requests are
// refused 429 in the API's own shape naming the budget and when it
// resets, and the money spent stays within the limit.
func TestBudgetThroughGuard(t *testing.T) {
	resets := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	src := &budgetLeases{warn: 100, limit: 200, resets: resets}
	m := newMesh(t, policy.Limits{}, func(c *Config) { c.Leases = src })
	m.rules.Grants[0].Budgets = []string{wire.LeaseMoney}
	// 1 EUR a million prompt tokens, 2 a million answer tokens.
	m.rules.Models = []wire.ModelRule{{Model: "llama", InputPrice: 1_000_000, OutputPrice: 2_000_000}, {Model: "qwen", InputPrice: 1_000_000, OutputPrice: 2_000_000}}
	m.apply(2)

	const body = `{"model":"llama","max_tokens":5}` // reserves 8+5 tokens (26 µEUR at the dearer rate), uses 10+5 (20 µEUR)
	var ok, warned int
	var refusal string
	for range 20 {
		resp := m.post(m.alice, "/v1/chat/completions", body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 429 {
			refusal = string(b)
			if resp.Header.Get("Retry-After") == "" {
				t.Error("a budget refusal without Retry-After")
			}
			break
		}
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", ok, resp.StatusCode, b)
		}
		ok++
		if w := resp.Header.Get(headerBudget); w != "" {
			warned++
			if !strings.Contains(w, "group:ml's budget of 0.0002 EUR a month: ") || !strings.Contains(w, "warn at 0.0001 EUR; resets 2027-01-01T00:00:00Z") {
				t.Errorf("warning header %q", w)
			}
		} else if warned > 0 {
			t.Errorf("request %d has no warning after an earlier one had", ok)
		}
	}
	for _, want := range []string{`"code":"budget_exceeded"`, "group:ml's budget of 0.0002 EUR a month is used up for alice@example.com", "it resets at 2027-01-01 00:00 UTC"} {
		if !strings.Contains(refusal, want) {
			t.Errorf("refusal %s does not say %q", refusal, want)
		}
	}
	if ok < 7 || warned == 0 || warned == ok {
		t.Errorf("%d answered (%d with a warning) of a budget of 200 µEUR at 20 each", ok, warned)
	}
	t.Logf("%d answered, %d warned; refusal: %s", ok, warned, refusal)
	recs := m.waitRecords(ok + 1)
	var spent int64
	var recWarned int
	for _, r := range recs {
		spent += r.Cost
		if len(r.BudgetWarnings) > 0 {
			recWarned++
		}
	}
	if spent > src.limit || spent != int64(ok)*20 || recWarned != warned {
		t.Errorf("spent %d µEUR in %d answers (%d audit records warned, %d answers), limit %d", spent, ok, recWarned, warned, src.limit)
	}
	if last := recs[len(recs)-1]; last.Reason != reasonBudget || last.Decision != "limit" {
		t.Errorf("the refused request's record: %+v", last)
	}
	code, out := m.call(m.alice, "/api/chat", `{"model":"qwen","messages":[{"role":"user","content":"hi"}],"options":{"num_predict":5}}`)
	if code != 429 || !strings.Contains(out, `"error":"group:ml's budget of 0.0002 EUR a month is used up`) {
		t.Errorf("Ollama's shape: %d %s", code, out)
	}
}
