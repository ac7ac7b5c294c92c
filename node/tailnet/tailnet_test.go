package tailnet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tailscale.com/ipn/store/mem"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"

	"github.com/moatmesh/moat/internal/standin"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/tailnet/tailnettest"
	"github.com/moatmesh/moat/policy"
)

// testPolicy grants the standin model to alice and to tag:ci, "private"
// to bob only with MFA, which a tailnet cannot prove, and "grouped" to the
// group ml, which the tailnet's app capability may give.
const testPolicy = `{
  "tagOwners": { "tag:gpu": [], "tag:ci": [] },
  "models": {
    "standin": { "servedBy": ["tag:gpu"] },
    "private": { "servedBy": ["tag:gpu"] },
    "grouped": { "servedBy": ["tag:gpu"] },
  },
  "grants": [
    { "src": ["%s"], "models": ["standin"] },
    { "src": ["tag:ci"], "models": ["standin"] },
    { "src": ["%s"], "models": ["private"], "mfa": "12h" },
    { "src": ["idp:ml"], "models": ["grouped"] },
  ],
}`

// spoofed are identity headers a caller might send to pose as someone
// else; they must change nothing.
func spoofed(login string) http.Header { return tailnettest.Spoofed(login) }

type harness struct {
	t     *testing.T
	ctx   context.Context
	tn    *tailnettest.Tailnet
	node  *Node
	url   string // the guard's base URL on the tailnet
	state string
}

// setup brings up a tailnet with alice, bob, a tag:ci runner and the node
// gpu-1 (tag:gpu) serving the stand-in model under testPolicy.
func setup(t *testing.T) (h *harness, alice, bob, ci *tsnet.Server) {
	h = newHarness(t)
	alice = h.tn.Join(t, h.ctx, "alice-laptop")
	bob = h.tn.Join(t, h.ctx, "bob-laptop")
	ci = h.tn.Join(t, h.ctx, "ci-runner", "tag:ci")
	pol, err := policy.Parse("policy.hujson", fmt.Appendf(nil, testPolicy, loginOf(t, h.ctx, alice), loginOf(t, h.ctx, bob)))
	if err != nil {
		t.Fatal(err)
	}
	h.start(Config{AdvertiseTags: []string{"tag:gpu"}, Policy: pol})
	return h, alice, bob, ci
}

// newHarness brings up a tailnet, without the node.
func newHarness(t *testing.T) *harness {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return &harness{t: t, ctx: ctx, tn: tailnettest.Start(t), state: t.TempDir()}
}

// start starts and runs the node gpu-1 with cfg, serving the models
// "standin", "private" and "grouped" from one stand-in server; it stops
// when the test ends.
func (h *harness) start(cfg Config) {
	cfg.Models = append(cfg.Models, tailnettest.Models(h.t)...)
	cfg.ControlURL, cfg.Hostname, cfg.StateDir = h.tn.URL, "gpu-1", h.state
	cfg.Store, cfg.Ephemeral, cfg.ShutdownTimeout = new(mem.Store), true, -1
	var err error
	if h.node, err = Start(h.ctx, cfg); err != nil {
		h.t.Fatal(err)
	}
	h.url = tailnettest.Run(h.t, h.ctx, h.node)
}

func loginOf(t *testing.T, ctx context.Context, s *tsnet.Server) string {
	return tailnettest.Login(t, ctx, s)
}

// chat sends a streamed chat request from s to model with header added,
// and returns the status and the streamed text (or error body).
func (h *harness) chat(s *tsnet.Server, model string, header http.Header) (int, string, error) {
	return tailnettest.Chat(h.ctx, s, h.url, model, header)
}

// records waits until the spool holds at least n records and returns them.
func (h *harness) records(n int) []audit.Record {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(filepath.Join(h.state, "audit", audit.SpoolFile))
		var recs []audit.Record
		for line := range strings.Lines(string(b)) {
			var r audit.Record
			if json.Unmarshal([]byte(line), &r) == nil {
				recs = append(recs, r)
			}
		}
		if len(recs) >= n || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTailnetGuard(t *testing.T) {
	h, alice, bob, ci := setup(t)
	aliceLogin, bobLogin := loginOf(t, h.ctx, alice), loginOf(t, h.ctx, bob)

	// A granted tailnet user streams a completion, whatever identity
	// headers she sends.
	status, text, err := h.chat(alice, "standin", spoofed(bobLogin))
	if err != nil || status != http.StatusOK || text != standin.Answer {
		t.Fatalf("alice: status %d, text %q, err %v; want 200 with the stand-in's answer", status, text, err)
	}
	// An ungranted one gets 403 naming her, even posing as alice.
	status, body, err := h.chat(bob, "standin", spoofed(aliceLogin))
	if err != nil || status != http.StatusForbidden || !strings.Contains(body, "not granted to "+bobLogin) {
		t.Fatalf("bob: status %d, body %s, err %v; want 403 not granted to %s", status, body, err, bobLogin)
	}
	// A grant that demands MFA is refused, saying why.
	status, body, err = h.chat(bob, "private", nil)
	if err != nil || status != http.StatusForbidden || !strings.Contains(body, "tailnet") || !strings.Contains(body, "mfa_required") {
		t.Fatalf("bob, MFA grant: status %d, body %s, err %v; want 403 mfa_required naming the tailnet", status, body, err)
	}
	// The node told the control server that it uploads no logs
	// (no-logs-no-support mode, which also makes tsnet's log transport a
	// no-op; the lockdown test shows nothing leaves for the log service).
	self, err := h.node.lc.StatusWithoutPeers(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := h.tn.Control.Node(self.Self.PublicKey); n == nil || !n.Hostinfo.NoLogsNoSupport() {
		t.Error("the control server does not see the node in no-logs-no-support mode")
	}
	// A tagged node is its tags.
	status, _, err = h.chat(ci, "standin", spoofed(aliceLogin))
	if err != nil || status != http.StatusOK {
		t.Fatalf("ci: status %d, err %v; want 200", status, err)
	}

	recs := h.records(4)
	if len(recs) != 4 {
		t.Fatalf("%d audit records, want 4: %+v", len(recs), recs)
	}
	want := []struct {
		login, decision string
		tags            []string
	}{
		{aliceLogin, audit.DecisionAllow, nil},
		{bobLogin, audit.DecisionDeny, nil},
		{bobLogin, audit.DecisionDenyMFA, nil},
		{"", audit.DecisionAllow, []string{"tag:ci"}},
	}
	for i, w := range want {
		r := recs[i]
		if r.Login != w.login || r.Decision != w.decision || !slices.Equal(r.Tags, w.tags) || !strings.HasPrefix(r.DeviceID, "tailnet:") {
			t.Errorf("record %d: login %q decision %q tags %v device %q; want %q %q %v tailnet:…", i, r.Login, r.Decision, r.Tags, r.DeviceID, w.login, w.decision, w.tags)
		}
	}
	if err := audit.Verify(filepath.Join(h.state, "audit")); err != nil {
		t.Errorf("audit spool does not verify: %v", err)
	}

	// The tailnet's moat app capability puts bob in the group ml.
	if status, _, _ := h.chat(bob, "grouped", nil); status != http.StatusForbidden {
		t.Fatalf("bob, grouped, before the capability: status %d, want 403", status)
	}
	h.tn.Control.SetGlobalAppCaps(tailcfg.PeerCapMap{DefaultCapName: {tailcfg.RawMessage(`{"groups":["ml"]}`)}})
	waitFor(t, "bob to be served grouped as a member of ml", func() bool {
		status, _, _ := h.chat(bob, "grouped", nil)
		return status == http.StatusOK
	})

	// Expiring alice's node at the control server stops her access.
	lc, _ := alice.LocalClient()
	st, err := lc.StatusWithoutPeers(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := h.tn.Control.Node(st.Self.PublicKey)
	n.KeyExpiry = time.Now().Add(-time.Minute)
	h.tn.Control.UpdateNode(n)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, _, err := h.chat(alice, "standin", nil)
		if err != nil || status != http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("alice still served 30s after her node expired at the control server")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// And the node no longer knows her.
	waitFor(t, "the node to drop alice's expired node from its callers", func() bool {
		return !slices.Contains(h.node.table.keys(), st.Self.PublicKey)
	})
}

// waitFor polls cond until it holds, failing the test after 30s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
