package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/atrest/atresttest"
)

// requireEncrypted is a netmap whose rules make llama (not free) need
// encrypted storage.
func requireEncrypted(on bool) *wire.NetMap {
	nm := &wire.NetMap{Rules: &wire.NodeRules{}}
	if on {
		nm.Rules.Models = []wire.ModelRule{{Model: "llama", EncryptedAtRest: on}}
	}
	return nm
}

// TestAtRestRefusesUnencryptedModel: with its data on a plain directory,
// a model whose policy entry sets encryptedAtRest answers 503 with the
// reason in the API's error shape and an audit event; another model is
// served; dropping the requirement serves it again with an event.
func TestAtRestRefusesUnencryptedModel(t *testing.T) {
	r := newIntegrityRig(t)
	r.models[0].SHA256 = "" // no pin: only the at-rest check stops it
	st := newStops(r.g)
	a := newAtRest(r.dir, filepath.Join(r.dir, "audit"), r.models, st.from(stopAtRest), r.spool, r.log, "gpu1", "n1")
	if err := a.SetNetMap(requireEncrypted(true)); err != nil {
		t.Fatal(err)
	}
	code, msg := r.chat("llama")
	if code != 503 || !strings.Contains(msg, `("encryptedAtRest")`) || !strings.Contains(msg, "weights file is not") || !strings.Contains(msg, r.file) {
		t.Fatalf("llama: %d %q, want 503 naming the requirement and the weights file", code, msg)
	}
	if code, msg := r.chat("free"); code != 200 {
		t.Fatalf("free (not required): %d %q", code, msg)
	}
	ev := r.records(apiAtRest)
	if len(ev) != 1 || ev[0].Model != "llama" || ev[0].Status != 503 || !strings.Contains(ev[0].Reason, "encryptedAtRest") {
		t.Fatalf("audit events %+v, want one 503 for llama", ev)
	}
	snap := a.snapshot()
	if snap.Models["llama"].Encrypted || snap.Models["llama"].Path != r.file || snap.Models["free"].Reason == "" || snap.Spool.Encrypted || snap.State.Encrypted {
		t.Fatalf("status %+v, want every path not encrypted with reasons", snap)
	}
	// The status report carries it, and looking again changes nothing.
	a.refresh()
	if len(r.records(apiAtRest)) != 1 {
		t.Fatal("a refresh with nothing changed wrote another event")
	}
	if err := a.SetNetMap(requireEncrypted(false)); err != nil {
		t.Fatal(err)
	}
	if code, msg := r.chat("llama"); code != 200 {
		t.Fatalf("llama once not required: %d %q", code, msg)
	}
	if ev := r.records(apiAtRest); len(ev) != 2 || ev[1].Status != 200 {
		t.Fatalf("audit events %+v, want a second one serving llama again", ev)
	}
}

// TestAtRestServesFromFscrypt puts the state, the spool and the weights
// on a real fscrypt-encrypted ext4 on a loop device: the required model
// is served, and reported as encrypted by fscrypt v2. A weights path
// outside it stops the model again.
func TestAtRestServesFromFscrypt(t *testing.T) {
	enc, plain := atresttest.Fscrypt(t)
	r := newIntegrityRig(t)
	r.models[0].SHA256 = ""
	spool := filepath.Join(enc, "audit")
	weights := filepath.Join(enc, "llama.gguf")
	if err := os.Mkdir(spool, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(weights, r.weights, 0o600); err != nil {
		t.Fatal(err)
	}
	r.models[0].File = weights
	st := newStops(r.g)
	a := newAtRest(enc, spool, r.models, st.from(stopAtRest), r.spool, r.log, "gpu1", "n1")
	if err := a.SetNetMap(requireEncrypted(true)); err != nil {
		t.Fatal(err)
	}
	if code, msg := r.chat("llama"); code != 200 {
		t.Fatalf("llama with every path encrypted: %d %q", code, msg)
	}
	snap := a.snapshot()
	for what, s := range map[string]wire.Storage{"weights": snap.Models["llama"], "spool": snap.Spool, "state": snap.State} {
		if !s.Encrypted || s.How != "fscrypt v2 (AES-256-XTS)" {
			t.Errorf("%s: %+v, want fscrypt v2", what, s)
		}
	}
	if len(r.records(apiAtRest)) != 0 {
		t.Fatal("an event for a model that was never stopped")
	}
	// The weights move to a plain directory: the next look stops it.
	moved := filepath.Join(plain, "llama.gguf")
	if err := os.WriteFile(moved, r.weights, 0o600); err != nil {
		t.Fatal(err)
	}
	a.models[0].File = moved
	a.refresh()
	if code, msg := r.chat("llama"); code != 503 || !strings.Contains(msg, "no fscrypt policy") {
		t.Fatalf("llama with plain weights: %d %q", code, msg)
	}
}
