package coordinator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/mesh/auditchain"
	"github.com/moatmesh/moat/mesh/wire"
)

// uiPolicy grants alice the model; its test asserts that bob is denied,
// which holds as long as the grant names alice only.
const uiPolicy = `{
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [
    { "src": [%q], "models": ["llama"] },
  ],
  "tests": [
    { "src": "alice@example.com", "accept": ["model:llama"] },
    { "src": "bob@example.com", "deny": ["model:llama"] },
  ],
}
`

func submit(t *testing.T, p *browsertest.Page, fields map[string]string) *browsertest.Page {
	t.Helper()
	p, err := p.Submit(fields)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func userID(t *testing.T, c *coordtest.Coord, email string) string {
	t.Helper()
	us, err := c.Store().Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(us, func(u *store.User) bool { return u.Email == email })
	if i < 0 {
		t.Fatalf("no user %s", email)
	}
	return us[i].ID
}

func TestUIPolicy(t *testing.T) {
	c := coordtest.Start(t)
	admin := c.AddPerson(t, "root@example.com", true)
	b, _ := signInUI(t, c, admin)
	ctx := context.Background()

	page := get(t, b, c.URL+"/ui/policy")
	if !page.Contains(`id="policy-text"`) || !page.Contains("built-in policy") {
		t.Fatalf("editor:\n%s", page.Body)
	}
	// A policy whose test fails is refused, showing the failing assertion,
	// and the text stays in the editor.
	failing := fmt.Sprintf(uiPolicy, "autogroup:member")
	page = submit(t, page, map[string]string{"text": failing, "message": "open llama to everyone"})
	if page.Status != http.StatusUnprocessableEntity || !page.Contains(`class="assertion failed"`) ||
		!page.Contains("bob@example.com should be denied model:llama") || !page.Contains("autogroup:member") {
		t.Fatalf("failing policy: status %d:\n%s", page.Status, page.Body)
	}
	if _, err := c.Store().Policy(ctx); err == nil {
		t.Fatal("a policy whose test fails was saved")
	}
	// Fixed, it is saved with its author and message, and put in force.
	page = submit(t, page, map[string]string{"text": fmt.Sprintf(uiPolicy, "alice@example.com"), "message": "llama for alice"})
	if page.URL.Path != "/ui/policy" || !page.Contains(`id="policy-saved"`) {
		t.Fatalf("after saving, at %s (%d):\n%s", page.URL, page.Status, page.Body)
	}
	pv, err := c.Store().Policy(ctx)
	if err != nil || pv.Author != userID(t, c, admin.Email) || pv.Message != "llama for alice" {
		t.Fatalf("saved policy %+v, %v", pv, err)
	}
	first := pv.ID
	if !slices.Contains(actions(t, c), fmt.Sprintf("policy.save %d", first)) {
		t.Errorf("not in the admin trail: %q", actions(t, c))
	}

	// A second version, then back to the first.
	page = submit(t, page, map[string]string{"text": strings.Replace(fmt.Sprintf(uiPolicy, "alice@example.com"), `"llama"] }`, `"llama"], "limits": { "rpm": 10 } }`, 1),
		"message": "limit alice"})
	if page.URL.Path != "/ui/policy" {
		t.Fatalf("second save at %s (%d):\n%s", page.URL, page.Status, page.Body)
	}
	hist := get(t, b, c.URL+"/ui/policy/history")
	for _, want := range []string{"root@example.com", "llama for alice", "limit alice", "rpm", "in force"} {
		if !hist.Contains(want) {
			t.Errorf("history lacks %q:\n%s", want, hist.Body)
		}
	}
	page = get(t, b, fmt.Sprintf("%s/ui/policy/versions/%d/rollback", c.URL, first))
	page = submit(t, page, nil)
	pv, err = c.Store().Policy(ctx)
	if err != nil || pv.ID == first || pv.Message != fmt.Sprintf("rollback to version %d", first) || pv.Author != userID(t, c, admin.Email) ||
		strings.Contains(pv.Text, "rpm") || page.URL.Path != "/ui/policy" {
		t.Fatalf("after rollback (at %s): %+v, %v", page.URL, pv, err)
	}
	if !slices.Contains(actions(t, c), fmt.Sprintf("policy.rollback %d", pv.ID)) {
		t.Errorf("rollback not in the admin trail: %q", actions(t, c))
	}
	if trail := get(t, b, c.URL+"/ui/trail"); !trail.Contains("policy.rollback") || !trail.Contains("root@example.com") {
		t.Errorf("admin trail page:\n%s", trail.Body)
	}

	// An auditor reads the policy and validates drafts, and cannot save.
	aud := c.AddPerson(t, "audit@example.com", false)
	ab, _ := signInUI(t, c, aud)
	setRole(t, c, aud.Email, "auditor")
	page = get(t, ab, c.URL+"/ui/policy")
	if page.Status != http.StatusOK || page.Contains(`id="policy-save"`) {
		t.Fatalf("auditor's editor (%d):\n%s", page.Status, page.Body)
	}
	if v := submit(t, page, map[string]string{"text": failing}); v.Status != http.StatusOK || !v.Contains(`data-result="fail"`) {
		t.Errorf("auditor's validation (%d):\n%s", v.Status, v.Body)
	}
	tok := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page.Body)
	resp, err := ab.Client.PostForm(c.URL+"/ui/policy", url.Values{"csrf": {tok[1]}, "text": {"{}"}, "message": {"x"}, "base": {fmt.Sprint(pv.ID)}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if now, _ := c.Store().Policy(ctx); resp.StatusCode != http.StatusForbidden || now.ID != pv.ID {
		t.Errorf("auditor's save: %d, policy now version %d", resp.StatusCode, now.ID)
	}
}

func setRole(t *testing.T, c *coordtest.Coord, email, role string) {
	t.Helper()
	u, err := c.Store().User(context.Background(), userID(t, c, email))
	if err != nil {
		t.Fatal(err)
	}
	u.Role = role
	if err := c.Store().UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

// enrollNode enrolls a node named host and returns its credential.
func enrollNode(t *testing.T, c *coordtest.Coord, host string) wire.Secret {
	t.Helper()
	_, res := enrollGPU(t, c, host)
	return res.Credential
}

// ship sends records as a node's spool would: chained lines, with the
// record numbered seq edited after it was sealed when seq is in edit.
func ship(t *testing.T, c *coordtest.Coord, cred wire.Secret, recs []map[string]any, edit ...int) {
	t.Helper()
	var batch bytes.Buffer
	batch.WriteByte('[')
	prev := ""
	for i, r := range recs {
		r["prev"] = prev
		body, _ := json.Marshal(r)
		var line bytes.Buffer
		prev = auditchain.Seal(&line, body)
		out := line.Bytes()
		if slices.Contains(edit, int(r["seq"].(int))) {
			out = bytes.Replace(out, []byte(`"tokensOut":7`), []byte(`"tokensOut":1`), 1)
		}
		if i > 0 {
			batch.WriteByte(',')
		}
		batch.Write(out)
	}
	batch.WriteByte(']')
	req, _ := http.NewRequest("POST", c.URL+"/api/v1/audit", &batch)
	req.Header.Set("Authorization", "Bearer "+string(cred))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != http.StatusOK {
		t.Fatalf("ship: %d %s", resp.StatusCode, b)
	}
}

func record(id string, seq int, at time.Time, login, decision string) map[string]any {
	return map[string]any{"id": id, "seq": seq, "time": at.UTC().Format(time.RFC3339Nano), "login": login, "model": "llama",
		"api": "openai.chat", "decision": decision, "tokensIn": 3, "tokensOut": 7, "latencyMs": 12, "status": 200,
		"promptHash": "hmac-sha256:" + strings.Repeat("ab", 32)}
}

func TestUIAudit(t *testing.T) {
	c := coordtest.Start(t)
	c.SavePolicy(t, `{ "tagOwners": { "tag:gpu": [] } }`)
	admin := c.AddPerson(t, "root@example.com", true)
	b, _ := signInUI(t, c, admin)
	now := c.Clock.Now().Truncate(time.Millisecond)

	gpu1 := enrollNode(t, c, "gpu-1")
	ship(t, c, gpu1, []map[string]any{
		record("a1", 1, now.Add(-3*time.Minute), "alice@example.com", "allow"),
		record("a2", 2, now.Add(-2*time.Minute), "=cmd|' /C calc'!A0", "deny"),
		record("a3", 3, now.Add(-1*time.Minute), "alice@example.com", "allow"),
	})
	gpu2 := enrollNode(t, c, "gpu-2")
	ship(t, c, gpu2, []map[string]any{
		record("b1", 1, now.Add(-3*time.Minute), "bob@example.com", "allow"),
		record("b2", 2, now.Add(-2*time.Minute), "bob@example.com", "allow"),
		record("b4", 4, now.Add(-time.Minute), "bob@example.com", "allow"),
	}, 2)

	page := get(t, b, c.URL+"/ui/audit?person=alice%40example.com&node=gpu-1")
	if page.Status != http.StatusOK || strings.Count(page.Body, `class="record"`) != 2 || !page.Contains(`data-id="a3"`) || page.Contains("bob@") {
		t.Fatalf("filtered audit page (%d):\n%s", page.Status, page.Body)
	}
	link := regexp.MustCompile(`href="(/ui/audit/records/a3)"`).FindStringSubmatch(page.Body)
	if link == nil {
		t.Fatalf("no link to record a3:\n%s", page.Body)
	}
	rec := get(t, b, c.URL+strings.ReplaceAll(link[1], "&amp;", "&"))
	for _, want := range []string{"alice@example.com", "gpu-1", "openai.chat", "hmac-sha256:abab", "matches its own hash", "<dt>prev</dt>"} {
		if !rec.Contains(want) {
			t.Errorf("record page lacks %q:\n%s", want, rec.Body)
		}
	}

	csvPage := get(t, b, c.URL+"/ui/audit/export.csv?decision=deny")
	if !csvPage.Contains("a2") || csvPage.Contains("a1") || !csvPage.Contains(`'=cmd|`) {
		t.Errorf("CSV export:\n%s", csvPage.Body)
	}
	jsonl := get(t, b, c.URL+"/ui/audit/export.jsonl?node=gpu-1")
	lines := strings.Split(strings.TrimSpace(jsonl.Body), "\n")
	if len(lines) != 3 {
		t.Fatalf("JSONL export: %d lines:\n%s", len(lines), jsonl.Body)
	}
	for _, l := range lines { // each line is the record as the node sealed it
		if _, _, err := auditchain.Open([]byte(l)); err != nil {
			t.Errorf("exported line %s: %v", l, err)
		}
	}

	chains := get(t, b, c.URL+"/ui/audit/chains")
	for _, want := range []string{"chain verified over the 3 records held (sequence 1–3)", "break at record 2 (b2)", "gap before record 4 (b4): record 3 is not held"} {
		if !chains.Contains(want) {
			t.Errorf("chains page lacks %q:\n%s", want, chains.Body)
		}
	}
}
