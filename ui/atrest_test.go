package ui

import (
	"strings"
	"testing"
	"time"
)

// TestNodeAtRest: the nodes page shows, per node, which of its paths
// are on encrypted storage and why the others are not, escaped; a node
// that does not report it says so.
func TestNodeAtRest(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	body := renderPeoplePage(t, "nodes.html", page{Title: "Nodes", Viewer: asAdmin, Data: nodesData{
		Nodes: []Node{{ID: "n1", Hostname: "gpu-1"}, {ID: "n2", Hostname: "gpu-2"}, {ID: "n3", Hostname: "gpu-3"}},
		Status: map[string]NodeStatus{
			"n1": {AtRest: &AtRest{Checked: at,
				State:   Storage{What: "state directory", Path: "/var/lib/moat-node", Encrypted: true, How: "dm-crypt LUKS2 (dm-0)"},
				Spool:   Storage{What: "audit spool", Path: "/var/lib/moat-node/audit", Encrypted: true, How: "dm-crypt LUKS2 (dm-0)"},
				Weights: []Storage{{What: "weights of llama", Path: "/models/llama.gguf", Reason: "no fscrypt policy " + hostile}}}},
			"n2": {AtRest: &AtRest{Checked: at,
				State: Storage{What: "state directory", Encrypted: true, How: "fscrypt v2 (AES-256-XTS)"},
				Spool: Storage{What: "audit spool", Encrypted: true, How: "fscrypt v2 (AES-256-XTS)"}}},
		},
	}})
	for _, s := range []string{"At rest", "1 not encrypted", "dm-crypt LUKS2 (dm-0)", "weights of llama", "/models/llama.gguf",
		"no fscrypt policy &lt;script&gt;", `<span class="badge">encrypted</span>`, "fscrypt v2 (AES-256-XTS)", "not reported"} {
		if !strings.Contains(body, s) {
			t.Errorf("nodes page lacks %q:\n%s", s, body)
		}
	}
	if strings.Contains(body, hostile) {
		t.Error("a reason is not escaped")
	}
}

// TestModelAtRest: the models page says whether the policy requires
// encryption at rest and what each node reports for the model.
func TestModelAtRest(t *testing.T) {
	body := renderPeoplePage(t, "models.html", page{Title: "Models", Viewer: asAdmin, Data: []Model{
		{Name: "llama", Declared: true, EncryptedAtRest: true, Nodes: []ModelNode{
			{ID: "n1", Hostname: "gpu-1", Allowed: true, AtRest: "encrypted"},
			{ID: "n2", Hostname: "gpu-2", Allowed: true, AtRest: "not encrypted: no fscrypt policy " + hostile},
			{ID: "n3", Hostname: "gpu-3", Allowed: true}}},
		{Name: "free", Declared: true},
	}})
	for _, s := range []string{"required: nodes serve it only while", "not required", "encrypted at rest",
		"not encrypted at rest", "no fscrypt policy &lt;script&gt;", "at rest: not reported"} {
		if !strings.Contains(body, s) {
			t.Errorf("models page lacks %q:\n%s", s, body)
		}
	}
}
