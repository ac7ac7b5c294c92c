package ui

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The fake's audit side: nothing recorded yet.
func (f *fake) Audit(context.Context, AuditFilter) ([]AuditRecord, error) { return nil, nil }
func (f *fake) AuditRecord(context.Context, string) (*AuditRecord, error) {
	return nil, ErrNotFound
}
func (f *fake) AuditChains(context.Context) ([]ChainState, error) { return nil, nil }
func (f *fake) AdminTrail(context.Context, int64, int) ([]AdminAction, error) {
	return nil, nil
}

// auditFake holds records (newest first) and remembers the filters asked.
type auditFake struct {
	fake
	recs    []AuditRecord
	asked   []AuditFilter
	actions []AdminAction // newest first
}

func (a *auditFake) Audit(_ context.Context, f AuditFilter) ([]AuditRecord, error) {
	a.asked = append(a.asked, f)
	var out []AuditRecord
	started := f.Before == ""
	for _, r := range a.recs {
		if !started {
			started = r.ID == f.Before
			continue
		}
		if len(out) < f.Limit {
			out = append(out, r)
		}
	}
	return out, nil
}
func (a *auditFake) AuditRecord(_ context.Context, id string) (*AuditRecord, error) {
	for _, r := range a.recs {
		if r.ID == id {
			r.HashOK = true
			return &r, nil
		}
	}
	return nil, ErrNotFound
}
func (a *auditFake) AuditChains(context.Context) ([]ChainState, error) {
	return []ChainState{
		{NodeID: "n_1", Node: "gpu-1", Records: 3, First: 1, Last: 3},
		{NodeID: "n_2", Node: "<gpu-2>", Records: 2, First: 1, Last: 4, Problems: []string{"gap before record 4 (r4): records 2–3 are not held"}},
	}, nil
}
func (a *auditFake) AdminTrail(_ context.Context, before int64, n int) ([]AdminAction, error) {
	var out []AdminAction
	for _, x := range a.actions {
		if (before == 0 || x.ID < before) && len(out) < n {
			out = append(out, x)
		}
	}
	return out, nil
}

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 123456000, time.UTC)

func newAuditFake(n int) *auditFake {
	a := &auditFake{fake: fake{viewer: testAuditor}}
	for i := n; i >= 1; i-- {
		a.recs = append(a.recs, AuditRecord{ID: fmt.Sprintf("r%03d", i), NodeID: "n_1", Node: "gpu-1", Time: t0.Add(time.Duration(i) * time.Second),
			Login: "alice@example.com", Model: "llama", Decision: "allow", Status: 200, TokensIn: 5, TokensOut: 7,
			Body: fmt.Appendf(nil, `{"hash":"%064d","id":"r%03d","seq":%d,"prev":"","model":"llama","promptHash":"hmac-sha256:ab"}`, i, i, i)})
	}
	return a
}

func TestAuditFiltersPassedThrough(t *testing.T) {
	a := newAuditFake(3)
	q := "person=alice%40example.com&model=llama&node=gpu-1&decision=deny&since=2026-03-04T09%3A00&until=2026-03-05T00%3A00%3A00Z"
	w := serve(New(a), "GET", "/ui/audit?"+q, nil)
	if w.Code != http.StatusOK || len(a.asked) != 1 {
		t.Fatalf("status %d, %d queries", w.Code, len(a.asked))
	}
	want := AuditFilter{Person: "alice@example.com", Model: "llama", Node: "gpu-1", Decision: "deny",
		Since: time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC), Until: time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC), Limit: auditPage + 1}
	if got := a.asked[0]; got != want {
		t.Errorf("filter\n%+v, want\n%+v", got, want)
	}
	body := w.Body.String()
	for _, s := range []string{`value="alice@example.com"`, `<option selected>deny</option>`, `value="2026-03-04T09:00"`,
		`href="/ui/audit/export.csv?decision=deny&amp;model=llama&amp;node=gpu-1&amp;person=alice%40example.com&amp;since=2026-03-04T09%3A00&amp;until=2026-03-05T00%3A00%3A00Z"`} {
		if !strings.Contains(body, s) {
			t.Errorf("missing %s:\n%s", s, body)
		}
	}
	if w := serve(New(a), "GET", "/ui/audit?since=yesterday", nil); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "From: want a date") {
		t.Errorf("bad time: %d\n%s", w.Code, w.Body)
	}
}

func TestAuditPages(t *testing.T) {
	a := newAuditFake(auditPage + 3)
	h := New(a)
	body := serve(h, "GET", "/ui/audit?model=llama", nil).Body.String()
	if n := strings.Count(body, `class="record"`); n != auditPage {
		t.Fatalf("%d records on the first page", n)
	}
	older := fmt.Sprintf(`href="/ui/audit?model=llama&amp;before=r%03d"`, 4)
	if !strings.Contains(body, older) || !strings.Contains(body, `href="/ui/audit/records/r053"`) {
		t.Fatalf("no older link %s or record link:\n%s", older, body)
	}
	body = serve(h, "GET", "/ui/audit?model=llama&before=r004", nil).Body.String()
	if n := strings.Count(body, `class="record"`); n != 3 || strings.Contains(body, "before=") || a.asked[1].Before != "r004" {
		t.Fatalf("%d records on the last page:\n%s", n, body)
	}
	if body := serve(New(newAuditFake(0)), "GET", "/ui/audit", nil).Body.String(); !strings.Contains(body, "No audit records match.") {
		t.Errorf("no empty state:\n%s", body)
	}
}

func TestAuditRecordPage(t *testing.T) {
	a := newAuditFake(2)
	a.recs[0].Login = "<script>x</script>"
	h := New(a)
	w := serve(h, "GET", "/ui/audit/records/r002", nil)
	body := w.Body.String()
	for _, s := range []string{`id="prompt-hash">hmac-sha256:ab<`, "matches its own hash", "<dt>seq</dt><dd><code>2</code>",
		"<dt>prev</dt>", "<dt>model</dt><dd><code>llama</code>", "&lt;script&gt;x"} {
		if !strings.Contains(body, s) {
			t.Errorf("missing %s:\n%s", s, body)
		}
	}
	if strings.Contains(body, "<script>x") {
		t.Error("login rendered raw")
	}
	for _, u := range []string{"/ui/audit/records/nope", "/ui/audit/records/r002x"} {
		if w := serve(h, "GET", u, nil); w.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", u, w.Code)
		}
	}
}

func TestAuditExports(t *testing.T) {
	a := newAuditFake(exportBatch + 5) // more than one batch
	a.recs[0].Login = "=HYPERLINK(\"http://evil\")"
	a.recs[0].Reason = "+1"
	a.recs[0].Model = "@SUM(A1)"
	a.recs[0].Grant = "-2"
	h := New(a)
	w := serve(h, "GET", "/ui/audit/export.csv?decision=allow", nil)
	if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Disposition"), `attachment; filename="moat-audit-`) ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") {
		t.Fatalf("status %d, headers %v", w.Code, w.Header())
	}
	rows, err := csv.NewReader(strings.NewReader(w.Body.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != exportBatch+6 || rows[0][0] != "id" {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	for i, want := range map[int]string{4: `'=HYPERLINK("http://evil")`, 10: "'+1", 7: "'@SUM(A1)", 11: "'-2", 16: "hmac-sha256:ab"} {
		if rows[1][i] != want {
			t.Errorf("column %s = %q, want %q", rows[0][i], rows[1][i], want)
		}
	}
	for _, f := range a.asked {
		if f.Decision != "allow" {
			t.Errorf("export filter %+v", f)
		}
	}
	if len(a.asked) != 2 || a.asked[1].Before != a.recs[exportBatch-1].ID {
		t.Errorf("batches asked: %+v", a.asked)
	}

	w = serve(h, "GET", "/ui/audit/export.jsonl", nil)
	lines := strings.Split(strings.TrimSuffix(w.Body.String(), "\n"), "\n")
	if w.Code != http.StatusOK || len(lines) != exportBatch+5 || lines[0] != string(a.recs[0].Body) ||
		!strings.Contains(w.Header().Get("Content-Disposition"), ".jsonl") {
		t.Fatalf("jsonl: status %d, %d lines, first %s", w.Code, len(lines), lines[0])
	}
	if w := serve(h, "GET", "/ui/audit/export.csv?until=soon", nil); w.Code != http.StatusBadRequest {
		t.Errorf("bad filter: %d", w.Code)
	}
	if w := serve(New(&auditFake{fake: fake{viewer: testMember}}), "GET", "/ui/audit/export.csv", nil); w.Code != http.StatusForbidden {
		t.Errorf("member export: %d", w.Code)
	}
}

func TestCSVCell(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+x": "'+x", "-x": "'-x", "@x": "'@x", "\tx": "'\tx", "\rx": "'\rx",
		"": "", "a=b": "a=b", "12": "12"} {
		if got := csvCell(in); got != want {
			t.Errorf("csvCell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAuditChainsAndTrail(t *testing.T) {
	a := newAuditFake(0)
	for i := trailPage + 2; i >= 1; i-- {
		a.actions = append(a.actions, AdminAction{ID: int64(i), Time: t0, Actor: "root@example.com", Action: "policy.save", Target: fmt.Sprint(i), Detail: "<i>why</i>"})
	}
	h := New(a)
	body := serve(h, "GET", "/ui/audit/chains", nil).Body.String()
	for _, s := range []string{"chain verified over the 3 records held (sequence 1–3)", "&lt;gpu-2&gt;", "records 2–3 are not held", `class="chain bad" data-node="n_2"`} {
		if !strings.Contains(body, s) {
			t.Errorf("chains lack %s:\n%s", s, body)
		}
	}
	body = serve(h, "GET", "/ui/trail", nil).Body.String()
	if n := strings.Count(body, `class="action"`); n != trailPage || !strings.Contains(body, `href="/ui/trail?before=3"`) ||
		!strings.Contains(body, "&lt;i&gt;why") || !strings.Contains(body, "root@example.com") {
		t.Fatalf("trail: %d actions:\n%s", n, body)
	}
	body = serve(h, "GET", "/ui/trail?before=3", nil).Body.String()
	if n := strings.Count(body, `class="action"`); n != 2 || strings.Contains(body, "?before=") {
		t.Fatalf("trail page 2: %d actions:\n%s", n, body)
	}
	for _, path := range []string{"/ui/trail", "/ui/audit", "/ui/audit/chains"} {
		if w := serve(New(&auditFake{fake: fake{viewer: testMember}}), "GET", path, nil); w.Code != http.StatusForbidden {
			t.Errorf("member GET %s: %d", path, w.Code)
		}
	}
	if body := serve(New(&auditFake{fake: fake{viewer: testAdmin}}), "GET", "/ui/trail", nil).Body.String(); !strings.Contains(body, "No admin actions yet") {
		t.Errorf("no empty state:\n%s", body)
	}
}

// slowChains holds every chain check until release is closed.
type slowChains struct {
	*auditFake
	started chan struct{}
	release chan struct{}
}

func (s slowChains) AuditChains(ctx context.Context) ([]ChainState, error) {
	s.started <- struct{}{}
	<-s.release
	return s.auditFake.AuditChains(ctx)
}

// Exports and chain checks run maxHeavy at a time, for everyone together.
func TestHeavyRequestsBounded(t *testing.T) {
	s := slowChains{newAuditFake(3), make(chan struct{}), make(chan struct{})}
	h := New(s)
	done := make(chan int, maxHeavy)
	for range maxHeavy {
		go func() { done <- serve(h, "GET", "/ui/audit/chains", nil).Code }()
		<-s.started
	}
	if w := serve(h, "GET", "/ui/audit/export.csv", nil); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("export while %d checks run: %d, want 429 with Retry-After", maxHeavy, w.Code)
	}
	close(s.release)
	for range maxHeavy {
		if c := <-done; c != http.StatusOK {
			t.Errorf("chain check: %d", c)
		}
	}
	if w := serve(h, "GET", "/ui/audit/export.csv", nil); w.Code != http.StatusOK {
		t.Errorf("export after the checks: %d", w.Code)
	}
}
