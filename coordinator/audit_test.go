package coordinator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator/store"
)

func TestAuditIngestDedupAndQuery(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	_, res := tc.enrollNode(t, tok, "llama")
	ship := func(cred, body string) (int, string) { return shipAudit(t, tc.URL, cred, body) }
	batch := `[{"id":"r1","time":"2026-11-22T10:00:00Z","login":"alice@example.com","model":"llama","decision":"allow","status":200,"nodeId":"forged"},
	           {"id":"r2","time":"2026-11-22T10:00:01Z","login":"bob@example.com","model":"llama","decision":"deny","reason":"no grant","status":403}]`
	cred := string(res.Credential)
	if status, body := ship(cred, batch); status != 200 || !strings.Contains(body, `"stored":2`) {
		t.Fatalf("first shipment: %d %s", status, body)
	}
	// At-least-once delivery: the same batch again stores nothing new.
	if status, body := ship(cred, batch); status != 200 || !strings.Contains(body, `"stored":0`) {
		t.Fatalf("repeated shipment: %d %s", status, body)
	}
	for _, bad := range []string{`{"id":"x"}`, `[{"time":"2026-11-22T10:00:00Z"}]`, `[{"id":"x"}]`, `not json`} {
		if status, _ := ship(cred, bad); status != 400 {
			t.Errorf("bad batch %s: %d, want 400", bad, status)
		}
	}
	alice := tc.addPerson(t, "alice@example.com", false)
	d := tc.signIn(t, alice, "laptop")
	if status, _ := ship(string(d.res.Credential), batch); status != 403 {
		t.Fatalf("a person's device shipped audit records: %d", status)
	}
	status, body := tc.admin(t, tok, "GET", "/audit?decision=deny", "")
	if status != 200 || !strings.Contains(body, "bob@example.com") || strings.Contains(body, "alice@example.com") {
		t.Fatalf("audit query: %d %s", status, body)
	}
	recs, _ := tc.store.Audit(t.Context(), storeFilterAll())
	for _, r := range recs {
		if r.NodeID != string(res.DeviceID) {
			t.Fatalf("record %s attributed to %q, want the authenticated node %s", r.ID, r.NodeID, res.DeviceID)
		}
	}
}

// TestAuditPullCursor: a poller following ?after= gets every record once,
// in ingestion order, including one shipped late with an old event time,
// which the time-ordered query would have put behind its last page.
func TestAuditPullCursor(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	_, res := tc.enrollNode(t, tok, "llama")
	ship := func(ids ...string) {
		t.Helper()
		var recs []string
		for _, id := range ids {
			recs = append(recs, fmt.Sprintf(`{"id":%q,"time":"2026-11-22T10:%s:00Z"}`, id, id[1:]))
		}
		if status, body := shipAudit(t, tc.URL, string(res.Credential), "["+strings.Join(recs, ",")+"]"); status != 200 {
			t.Fatalf("ship %v: %d %s", ids, status, body)
		}
	}
	pull := func(after int64, limit int) auditPage {
		t.Helper()
		status, body := tc.admin(t, tok, "GET", fmt.Sprintf("/audit?after=%d&limit=%d", after, limit), "")
		var p auditPage
		if status != 200 || json.Unmarshal([]byte(body), &p) != nil {
			t.Fatalf("pull after %d: %d %s", after, status, body)
		}
		return p
	}
	ids := func(p auditPage) (out []string) {
		for _, e := range p.Records {
			var r auditRecord
			_ = json.Unmarshal(e.Record, &r)
			out = append(out, r.ID)
		}
		return out
	}
	ship("r20", "r30")
	p := pull(0, 10)
	if got := ids(p); fmt.Sprint(got) != "[r20 r30]" || p.Next != p.Records[1].Seq {
		t.Fatalf("first pull: %v next %d", got, p.Next)
	}
	ship("r10") // late: an event older than everything pulled
	late := pull(p.Next, 10)
	if got := ids(late); fmt.Sprint(got) != "[r10]" || late.Next <= p.Next {
		t.Fatalf("pull after %d: %v next %d, want the late record", p.Next, got, late.Next)
	}
	if again := pull(late.Next, 10); len(again.Records) != 0 || again.Next != late.Next {
		t.Fatalf("pull at the end: %+v", again)
	}
	// The UI's query still orders by event time.
	if _, body := tc.admin(t, tok, "GET", "/audit", ""); strings.Index(body, `"r30"`) > strings.Index(body, `"r10"`) {
		t.Fatalf("time-ordered query: %s", body)
	}
	for _, bad := range []string{"after=x", "after=-1", "after=0&decision=deny"} {
		if status, _ := tc.admin(t, tok, "GET", "/audit?"+bad, ""); status != 400 {
			t.Errorf("GET /audit?%s: %d, want 400", bad, status)
		}
	}
}

func storeFilterAll() store.AuditFilter { return store.AuditFilter{Limit: 100} }

// shipAudit posts a batch of audit records as the node with cred.
func shipAudit(t *testing.T, url, cred, body string) (int, string) {
	t.Helper()
	return bearerRequest(t, "POST", url+"/api/v1/audit", cred, body)
}
