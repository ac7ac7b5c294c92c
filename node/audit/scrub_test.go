package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPurgePrompts: prompts a node of before kept in clear are removed
// from records already delivered, not from those still waiting; Verify
// passes across the rewritten records through their scrubs and fails
// when one is changed again; the spool reopens, appends continue the
// chain, shipping resumes without a resend, and retention deletes the
// rewritten records under its checkpoint.
func TestPurgePrompts(t *testing.T) {
	r := newRetentionRig(t)
	old := func(prompt string) {
		rec := &Record{Time: r.now.Add(-40 * 24 * time.Hour), UserID: "u_alice", Decision: DecisionAllow, Status: 200}
		if prompt != "" {
			rec.Prompt = json.RawMessage(`{"messages":"` + prompt + `"}`)
		}
		if err := r.sp.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	old("first secret")
	old("")
	old("second secret")
	r.ship()
	old("not yet delivered")
	n, err := r.sh.PurgePrompts(r.sp)
	if err != nil || n != 2 {
		t.Fatalf("PurgePrompts = %d, %v; want 2", n, err)
	}
	b, _ := os.ReadFile(filepath.Join(r.dir, SpoolFile))
	if bytes.Contains(b, []byte("first secret")) || bytes.Contains(b, []byte("second secret")) ||
		!bytes.Contains(b, []byte("not yet delivered")) || bytes.Count(b, []byte(`"promptScrubbed":"purged"`)) != 2 {
		t.Fatalf("spool after the purge:\n%s", b)
	}
	r.verify(4, 0, 0)
	if n, err := r.sh.PurgePrompts(r.sp); err != nil || n != 0 {
		t.Fatalf("second purge = %d, %v; want nothing", n, err)
	}

	// Reopened, the spool continues the chain from its last record.
	r.sh.Close()
	r.sp.Close()
	var err2 error
	if r.sp, err2 = Open(r.dir, Options{}); err2 != nil {
		t.Fatal(err2)
	}
	r.restart()
	old("")
	r.ship()
	if u, d := r.rc.count(); u != 5 || d != 5 {
		t.Fatalf("receiver: %d unique in %d deliveries, want 5 exactly once", u, d)
	}
	if n, err := r.sh.PurgePrompts(r.sp); err != nil || n != 1 {
		t.Fatalf("purge once delivered = %d, %v; want the last clear prompt", n, err)
	}
	r.verify(5, 0, 0)
	if cp := r.retain(); cp.First != 1 || cp.Last != 5 {
		t.Fatalf("retention across rewritten records: %+v, want 1–5", cp)
	}

	// A rewritten record changed again is a break.
	r2 := newRetentionRig(t)
	r2.sp.Append(&Record{Time: r2.now, Prompt: json.RawMessage(`"x"`), Decision: DecisionAllow})
	r2.ship()
	if n, err := r2.sh.PurgePrompts(r2.sp); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	path := filepath.Join(r2.dir, SpoolFile)
	b, _ = os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(b), `"decision":"allow"`, `"decision":"deny"`, 1)), 0o600)
	if err := Verify(r2.dir); !errors.Is(err, ErrTampered) {
		t.Fatalf("Verify after a rewritten record was changed: %v", err)
	}
}
