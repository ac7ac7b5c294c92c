package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/guard"
)

// syncBuf is a log sink safe for concurrent writes.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// integrityRig is a real guard serving "llama" (pinned to a temp weights
// file) and "free" (no pin) from a stand-in upstream, with alice granted
// both, and an audit spool.
type integrityRig struct {
	t       *testing.T
	g       *guard.Guard
	spool   *audit.Spool
	dir     string
	file    string
	weights []byte
	models  []Model
	logs    *syncBuf
	log     *slog.Logger
}

func newIntegrityRig(t *testing.T) *integrityRig {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	}))
	t.Cleanup(up.Close)
	r := &integrityRig{t: t, dir: t.TempDir(), weights: []byte("GGUF weights, version 1\n"), logs: &syncBuf{}}
	r.log = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.file = filepath.Join(r.dir, "llama.gguf")
	if err := os.WriteFile(r.file, r.weights, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Chmod(r.file, 0o600) // whatever the umask
	sum := sha256.Sum256(r.weights)
	u := guard.Upstream{URL: up.URL, Kind: guard.KindOpenAI}
	r.models = []Model{{Name: "llama", Upstream: u, SHA256: "sha256:" + strings.ToUpper(hex.EncodeToString(sum[:])), File: r.file}, {Name: "free", Upstream: u}}
	var err error
	if r.spool, err = audit.Open(filepath.Join(r.dir, "audit"), audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.spool.Close() })
	if r.g, err = guard.New(guard.Config{Models: map[string]guard.Upstream{"llama": u, "free": u}, NodeName: "gpu1", NodeID: "n1", Audit: r.spool, AuditSync: true, Logger: r.log}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.g.Close() })
	priv, _ := key.NewPrivate()
	nm := &wire.NetMap{Version: wire.Version, Seq: 1,
		Rules: &wire.NodeRules{Grants: []wire.GrantRule{{ID: "grants[0]"}}},
		Peers: []wire.Peer{{Key: priv.Public(), Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.2")},
			Identity: wire.Identity{UserID: "u-alice", Login: "alice@example.com", Expiry: time.Now().Add(time.Hour)},
			Access:   []wire.ModelAccess{{Model: "llama", Grant: 0}, {Model: "free", Grant: 0}}}}}
	if err := r.g.SetNetMap(nm); err != nil {
		t.Fatal(err)
	}
	return r
}

// chat asks the guard for a completion from alice's mesh address.
func (r *integrityRig) chat(model string) (int, string) {
	req := httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	req.RemoteAddr = "100.64.0.2:40000"
	w := httptest.NewRecorder()
	r.g.ServeHTTP(w, req)
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	json.Unmarshal(w.Body.Bytes(), &e)
	return w.Code, e.Error.Message
}

func (r *integrityRig) listed() string {
	req := httptest.NewRequest("GET", "/v1/models", nil)
	req.RemoteAddr = "100.64.0.2:40000"
	w := httptest.NewRecorder()
	r.g.ServeHTTP(w, req)
	return w.Body.String()
}

// events returns the spool's integrity event records.
func (r *integrityRig) events() []audit.Record { return r.records(apiIntegrity) }

// records returns the spool's records of api.
func (r *integrityRig) records(api string) []audit.Record {
	r.t.Helper()
	b, err := os.ReadFile(filepath.Join(r.dir, "audit", audit.SpoolFile))
	if err != nil {
		r.t.Fatal(err)
	}
	var out []audit.Record
	for line := range bytes.Lines(b) {
		var rec audit.Record
		if err := json.Unmarshal(line, &rec); err != nil {
			r.t.Fatal(err)
		}
		if rec.API == api {
			out = append(out, rec)
		}
	}
	return out
}

func TestIntegrityStopsAndRestoresModel(t *testing.T) {
	r := newIntegrityRig(t)
	ctx := context.Background()
	in := newIntegrity(r.models, r.g, r.spool, r.log, "gpu1", "n1")
	if in == nil || len(in.models) != 1 {
		t.Fatalf("checker %+v", in)
	}

	// Before the first check the pinned model is not served; the other is.
	if code, msg := r.chat("llama"); code != 503 || !strings.Contains(msg, "is being checked against its pinned sha256") {
		t.Fatalf("before the first check: %d %q", code, msg)
	}
	if code, _ := r.chat("free"); code != 200 {
		t.Fatalf("unpinned model: %d", code)
	}

	// A matching file serves.
	if !in.check(ctx) {
		t.Fatal("first check reported no change")
	}
	if code, msg := r.chat("llama"); code != 200 {
		t.Fatalf("matching file: %d %q", code, msg)
	}
	st := in.snapshot()["llama"]
	if !st.OK || st.Reason != "" || st.Warning != "" || st.Checked.IsZero() {
		t.Fatalf("status after a match: %+v", st)
	}
	if in.check(ctx) {
		t.Fatal("an unchanged file changed the status")
	}

	// An edited file stops the model with the reason, an error log, an
	// audit event, and a refusal record per request.
	if err := os.WriteFile(r.file, []byte("GGUF weights, version 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !in.check(ctx) {
		t.Fatal("a mismatch reported no change")
	}
	code, msg := r.chat("llama")
	if code != 503 || !strings.HasPrefix(msg, `model "llama" is stopped on this node: weights file `+r.file+` does not match its pinned sha256`) || !strings.HasSuffix(msg, "an admin must check the node") {
		t.Fatalf("after the edit: %d %q", code, msg)
	}
	if strings.Contains(r.listed(), `"llama"`) || !strings.Contains(r.listed(), `"free"`) {
		t.Fatalf("listing with llama stopped: %s", r.listed())
	}
	if st := in.snapshot()["llama"]; st.OK || !strings.Contains(st.Reason, "does not match its pinned sha256") {
		t.Fatalf("status after a mismatch: %+v", st)
	}
	if !strings.Contains(r.logs.String(), "level=ERROR msg=\"model stopped: its weights file failed the integrity check\" model=llama") {
		t.Fatalf("no error logged:\n%s", r.logs)
	}
	ev := r.events()
	if len(ev) != 1 || ev[0].Decision != guard.DecisionUnavailable || ev[0].Model != "llama" || ev[0].Node != "gpu1" || ev[0].NodeID != "n1" ||
		!strings.Contains(ev[0].Reason, "does not match") || ev[0].Time.IsZero() || ev[0].Status != 503 {
		t.Fatalf("integrity events %+v", ev)
	}
	in.check(ctx) // still bad: no second event
	if ev := r.events(); len(ev) != 1 {
		t.Fatalf("a persisting mismatch raised another event: %+v", ev)
	}

	// Restored: served again, with an event saying so.
	if err := os.WriteFile(r.file, r.weights, 0o600); err != nil {
		t.Fatal(err)
	}
	if !in.check(ctx) {
		t.Fatal("restoring reported no change")
	}
	if code, msg := r.chat("llama"); code != 200 {
		t.Fatalf("restored: %d %q", code, msg)
	}
	if ev := r.events(); len(ev) != 2 || ev[1].Decision != decisionIntegrityOK {
		t.Fatalf("integrity events %+v", ev)
	}

	// A missing (unreadable) file stops it too.
	os.Rename(r.file, r.file+".moved")
	in.check(ctx)
	if code, msg := r.chat("llama"); code != 503 || !strings.Contains(msg, "cannot be read (no such file or directory)") {
		t.Fatalf("missing file: %d %q", code, msg)
	}
	os.Rename(r.file+".moved", r.file)
	in.check(ctx)
	if code, _ := r.chat("llama"); code != 200 {
		t.Fatalf("file back: %d", code)
	}

	// The guard's own records of the refused requests say "unavailable".
	b, _ := os.ReadFile(filepath.Join(r.dir, "audit", audit.SpoolFile))
	if !strings.Contains(string(b), `"api":"openai.chat","decision":"unavailable","reason":"model_unavailable"`) {
		t.Fatalf("no refusal record in the spool:\n%s", b)
	}
	if err := audit.Verify(filepath.Join(r.dir, "audit")); err != nil {
		t.Fatalf("spool chain: %v", err)
	}
}

func TestIntegrityExposureWarning(t *testing.T) {
	r := newIntegrityRig(t)
	in := newIntegrity(r.models, r.g, r.spool, r.log, "gpu1", "n1")
	ctx := context.Background()
	in.check(ctx)
	if err := os.Chmod(r.file, 0o644); err != nil {
		t.Fatal(err)
	}
	if !in.check(ctx) {
		t.Fatal("a new warning reported no change")
	}
	st := in.snapshot()["llama"]
	if !st.OK || !strings.Contains(st.Warning, "is readable by every user on this host (mode 0644)") {
		t.Fatalf("status of a world-readable file: %+v", st)
	}
	if code, _ := r.chat("llama"); code != 200 {
		t.Fatalf("a warning must not stop the model: %d", code)
	}
	if !strings.Contains(r.logs.String(), `level=WARN msg="weights file is readable by others than the service user" model=llama`) {
		t.Fatalf("no warning logged:\n%s", r.logs)
	}
	// Group-readable by the service's own group: fine.
	os.Chmod(r.file, 0o640)
	in.check(ctx)
	if st := in.snapshot()["llama"]; st.Warning != "" {
		t.Fatalf("group-readable by the service's group: %+v", st)
	}
	// By a group the service is not in: warned.
	if os.Geteuid() == 0 {
		if err := os.Chown(r.file, -1, 54321); err != nil {
			t.Fatal(err)
		}
		in.check(ctx)
		if st := in.snapshot()["llama"]; !strings.Contains(st.Warning, "is readable by group 54321, which the service user is not in") {
			t.Fatalf("group-readable by a foreign group: %+v", st)
		}
		// Owned by another user who can read it.
		os.Chown(r.file, 54321, os.Getegid())
		os.Chmod(r.file, 0o400)
		in.check(ctx)
		if st := in.snapshot()["llama"]; !st.OK || !strings.Contains(st.Warning, "is owned and readable by user 54321, not the service user") {
			t.Fatalf("owned by another user: %+v", st)
		}
		os.Chown(r.file, 0, os.Getegid())
		in.check(ctx)
		if st := in.snapshot()["llama"]; st.Warning != "" {
			t.Fatalf("root-owned, mode 0400: %+v", st)
		}
	}
}

// TestIntegrityNodeLoop runs the checker as the node does: its own
// goroutine with a tiny interval, the status reported to a stand-in
// coordinator through the control client, and Close stopping it.
func TestIntegrityNodeLoop(t *testing.T) {
	r := newIntegrityRig(t)
	sink := newReportSink(t)
	cfg := Config{Models: r.models, Hostname: "gpu1", IntegrityInterval: 5 * time.Millisecond, Logger: r.log,
		Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641")}}
	n := &Node{cfg: cfg, log: r.log, st: &state{DeviceID: "n1"}, member: sink.member(t), guard: r.g, stops: newStops(r.g), spool: r.spool}
	n.startIntegrity()
	defer n.Close()

	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; reports: %q", what, sink.reports())
			}
		}
	}
	lastReport := func() map[string]map[string]ModelIntegrity {
		bodies := sink.reports()
		if len(bodies) == 0 {
			return nil
		}
		var body struct {
			Status map[string]map[string]ModelIntegrity `json:"status"`
		}
		json.Unmarshal([]byte(bodies[len(bodies)-1]), &body)
		return body.Status
	}
	waitFor("a report of a good file", func() bool { st := lastReport()["integrity"]["llama"]; return st.OK && !st.Checked.IsZero() })
	if code, _ := r.chat("llama"); code != 200 {
		t.Fatalf("matching file: %d", code)
	}
	os.WriteFile(r.file, []byte("tampered"), 0o600)
	waitFor("a report of the mismatch", func() bool {
		st := lastReport()["integrity"]["llama"]
		return !st.OK && strings.Contains(st.Reason, "does not match its pinned sha256")
	})
	if code, msg := r.chat("llama"); code != 503 || !strings.Contains(msg, "does not match its pinned sha256") {
		t.Fatalf("tampered file: %d %q", code, msg)
	}
	all := sink.reports()
	raw := all[len(all)-1]
	if !strings.Contains(raw, `"status":{"integrity":{"llama":{"ok":false,"reason":"weights file `) || !strings.Contains(raw, `"models":[{"name":"llama"`) {
		t.Fatalf("advertisement %s", raw)
	}
	os.WriteFile(r.file, r.weights, 0o600)
	waitFor("a report of the restored file", func() bool { return lastReport()["integrity"]["llama"].OK })
	if code, _ := r.chat("llama"); code != 200 {
		t.Fatalf("restored file: %d", code)
	}
	n.Close() // stops and waits for the checker before the spool closes
	if n.spool.Append(&audit.Record{Time: time.Now(), Decision: "x"}) == nil {
		t.Fatal("spool still open after Close")
	}
}

func TestIntegrityConfig(t *testing.T) {
	c := Config{Models: []Model{{Name: "m", SHA256: "abc", File: "/x"}}}
	if err := c.setDefaults(); err == nil || !strings.Contains(err.Error(), "not 64 hex digits") {
		t.Fatalf("bad pin accepted: %v", err)
	}
	c = Config{Models: []Model{{Name: "m", SHA256: "sha256:" + strings.Repeat("A", 64), File: "/x"}}}
	if err := c.setDefaults(); err != nil || c.IntegrityInterval != DefaultIntegrityInterval {
		t.Fatalf("%v, interval %s", err, c.IntegrityInterval)
	}
	if in := newIntegrity([]Model{{Name: "m", SHA256: strings.Repeat("a", 64)}}, nil, nil, slog.New(slog.DiscardHandler), "", ""); in != nil {
		t.Fatal("a checker for a model without a file")
	}
}
