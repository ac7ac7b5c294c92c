package guard

import (
	"io"
	"testing"

	"github.com/moatmesh/moat/policy"
)

// TestScreenCustomDetector: a detector from the netmap redacts prompts
// under its category's action, and a netmap that changes only its
// pattern is compiled anew.
func TestScreenCustomDetector(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	send := func() string {
		body := `{"model":"llama","messages":[{"role":"user","content":"patient MRN-12345678, NPI 1234567893"}]}`
		resp := m.post(m.alice, "/v1/chat/completions", body)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		return m.up.last().body["messages"].([]any)[0].(map[string]any)["content"].(string)
	}
	det := policy.Detector{Name: "mrn", Pattern: `MRN-\d{8}`, Category: "pii"}
	m.withGuard(policy.Guard{Redact: []string{"pii"}, Detectors: []policy.Detector{det}}, policy.Audit{})
	if got := send(); got != "patient [REDACTED:mrn], NPI [REDACTED:us-npi]" {
		t.Fatalf("upstream got %q", got)
	}
	det.Pattern = `MRN-\d{9}`
	m.withGuard(policy.Guard{Redact: []string{"pii"}, Detectors: []policy.Detector{det}}, policy.Audit{})
	if got := send(); got != "patient MRN-12345678, NPI [REDACTED:us-npi]" {
		t.Fatalf("after the pattern changed, upstream got %q", got)
	}
}
