package coordinator

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/auditsink"
)

// TestAuditSinkWebhook: a coordinator configured with a webhook pushes
// what nodes ship and the admin trail, signed, without the prompt.
func TestAuditSinkWebhook(t *testing.T) {
	secret := []byte("a-webhook-secret-of-some-length")
	var mu sync.Mutex
	got := map[string]string{}
	rcv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := auditsink.Verify(secret, r.Header.Get(auditsink.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			t.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b struct{ Events []auditsink.Event }
		_ = json.Unmarshal(body, &b)
		mu.Lock()
		defer mu.Unlock()
		for _, e := range b.Events {
			got[e.ID] = string(e.Data)
		}
	}))
	defer rcv.Close()
	sink := AuditSink{Name: "webhook", Filter: auditsink.Filter{Records: true, Admin: true},
		Sink: &auditsink.Webhook{URL: rcv.URL, Secret: secret, Client: rcv.Client()}}
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.AuditSinks = []AuditSink{sink} })
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	_, res := tc.enrollNode(t, tok, "llama")
	rec := `[{"id":"r1","time":"2026-11-22T10:00:00Z","decision":"allow","prompt":{"messages":"do not export me"}}]`
	if status, body := shipAudit(t, tc.URL, string(res.Credential), rec); status != 200 {
		t.Fatalf("ship: %d %s", status, body)
	}
	var record, policy string
	for end := time.Now().Add(30 * time.Second); record == "" || policy == ""; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the webhook got %v", got)
		}
		mu.Lock()
		record = got["record:r1"]
		for _, d := range got {
			if strings.Contains(d, `"action":"policy.save"`) {
				policy = d
			}
		}
		mu.Unlock()
	}
	if strings.Contains(record, "do not export me") {
		t.Fatalf("the prompt left: %s", record)
	}
}
