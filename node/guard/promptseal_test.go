package guard

import (
	"bytes"
	"testing"

	"github.com/moatmesh/moat/mesh/promptkey"
	"github.com/moatmesh/moat/policy"
)

// TestPromptSealedToPerson: with "prompts": "full" the record keeps the
// prompt encrypted to the caller's prompt key, never in clear: the spool
// does not hold it, the person's private key opens it, and a caller
// without a key (erased) has no prompt kept at all.
func TestPromptSealedToPerson(t *testing.T) {
	m := newMesh(t, policy.Limits{}, nil)
	pub, priv, err := promptkey.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	m.alice.id.PromptKey = pub
	m.withGuard(policy.Guard{}, policy.Audit{Prompts: "full"})
	body := `{"model":"llama","messages":[{"role":"user","content":"the secret plan"}]}`
	if st, b := m.call(m.alice, "/v1/chat/completions", body); st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	rec := m.waitRecords(1)[0]
	if rec.Prompt != nil || rec.PromptSealed == "" {
		t.Fatalf("record keeps prompt %q, sealed %q", rec.Prompt, rec.PromptSealed)
	}
	if got, err := promptkey.Open(priv, "u-alice", rec.PromptSealed); err != nil || string(got) != body {
		t.Fatalf("opened %q, %v; want the request body", got, err)
	}
	if sp, _ := readSpool(m.dir); bytes.Contains(sp, []byte("secret plan")) {
		t.Fatal("the spool holds the prompt in clear")
	}

	m.alice.id.PromptKey = nil // erased
	m.apply(3)
	if st, b := m.call(m.alice, "/v1/chat/completions", body); st != 200 {
		t.Fatalf("%d %s", st, b)
	}
	rec = m.waitRecords(2)[1]
	if rec.Prompt != nil || rec.PromptSealed != "" {
		t.Fatalf("a person without a prompt key: record keeps %q / %q", rec.Prompt, rec.PromptSealed)
	}
}
