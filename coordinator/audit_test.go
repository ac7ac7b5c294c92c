package coordinator

import (
	"net/http"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator/store"
)

func TestAuditIngestDedupAndQuery(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	_, res := tc.enrollNode(t, tok, "llama")
	ship := func(cred, body string) (int, string) {
		req, _ := http.NewRequest("POST", tc.URL+"/api/v1/audit", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+cred)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		return resp.StatusCode, string(b[:n])
	}
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

func storeFilterAll() store.AuditFilter { return store.AuditFilter{Limit: 100} }
