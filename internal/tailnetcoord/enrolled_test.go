package tailnetcoord_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"tailscale.com/ipn/store/mem"
	"tailscale.com/tsnet"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/standin"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/tailnet"
	"github.com/moatmesh/moat/node/tailnet/tailnettest"
)

// enrolledPolicy, at the coordinator: the IdP group ml may use the
// stand-in model on tag:gpu nodes, and so may tailnet devices tagged
// tag:ci; "private" wants MFA; %s is granted "grouped" (a person named
// by login).
const enrolledPolicy = `{
  "tagOwners": { "tag:gpu": [], "tag:ci": [] },
  "models": {
    "standin": { "servedBy": ["tag:gpu"] },
    "private": { "servedBy": ["tag:gpu"] },
    "grouped": { "servedBy": ["tag:gpu"] },
  },
  "grants": [
    { "src": ["idp:ml"], "models": ["standin"] },
    { "src": ["tag:ci"], "models": ["standin"] },
    { "src": ["idp:ml"], "models": ["private"], "mfa": "12h" },
    { "src": ["%s"], "models": ["grouped"] },
  ],
}`

// TestEnrolledTailnet: a tailnet node enrolled at a real coordinator
// takes its policy, people and groups from there. alice (a person there,
// in the IdP group ml) streams a completion over the tailnet; bob (a
// person without a grant) and carol (a tailnet login the coordinator does
// not know) are refused; a tag:ci device counts as tag:ci because the
// coordinator maps that tag; MFA grants are refused; the audit reaches
// the coordinator naming alice; a policy saved at the coordinator
// revokes alice on the running node; revoking the node stops it serving.
func TestEnrolledTailnet(t *testing.T) {
	h := &harness{t: t}
	h.ctx, h.cancel = context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(h.cancel)
	h.tn = tailnettest.Start(t)
	alice := h.tn.Join(t, h.ctx, "alice-laptop")
	bob := h.tn.Join(t, h.ctx, "bob-laptop")
	carol := h.tn.Join(t, h.ctx, "carol-laptop")
	ci := h.tn.Join(t, h.ctx, "ci-runner", "tag:ci")
	aliceLogin, bobLogin := tailnettest.Login(t, h.ctx, alice), tailnettest.Login(t, h.ctx, bob)

	c := coordtest.Start(t, func(cfg *coordinator.Config) { cfg.TailnetLogins, cfg.TailnetTags = true, []string{"tag:ci"} })
	c.SignInDevice(t, c.AddPerson(t, aliceLogin, false, "ml"), "alice-mac")
	c.SignInDevice(t, c.AddPerson(t, bobLogin, false), "bob-mac")
	c.SavePolicy(t, fmt.Sprintf(enrolledPolicy, bobLogin))
	h.start(tailnet.Config{Coordinator: &node.CoordinatorConfig{URL: c.URL, EnrollKey: wire.Secret(c.EnrollKey(t, "tag:gpu"))}})

	// alice is served once the node has its first map, whatever
	// identity headers she sends.
	waitFor(t, "alice to be served", func() bool {
		status, text, err := h.chat(alice, "standin", tailnettest.Spoofed(bobLogin))
		return err == nil && status == http.StatusOK && text == standin.Answer
	})
	h.wantStatus(bob, "standin", http.StatusForbidden, "not granted")
	h.wantStatus(bob, "grouped", http.StatusOK, "")
	h.wantStatus(carol, "standin", http.StatusForbidden, "")
	h.wantStatus(ci, "standin", http.StatusOK, "")
	h.wantStatus(alice, "private", http.StatusForbidden, "mfa_required")

	// The audit reaches the coordinator naming alice, from this node.
	waitFor(t, "alice's record at the coordinator", func() bool {
		var out struct {
			Records []struct{ Login, Decision, Model, NodeID string }
		}
		if err := json.Unmarshal([]byte(c.Admin(t, "GET", "/audit?login="+aliceLogin, "")), &out); err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Records {
			if r.Model == "standin" && r.Decision == "allow" && r.NodeID == string(h.node.DeviceID()) {
				return true
			}
		}
		return false
	})

	// A policy saved at the coordinator applies on the running node.
	c.SavePolicy(t, strings.Replace(fmt.Sprintf(enrolledPolicy, bobLogin), `"src": ["idp:ml"], "models": ["standin"]`, `"src": ["idp:nobody"], "models": ["standin"]`, 1))
	waitFor(t, "alice to be refused after the policy change", func() bool {
		status, _, err := h.chat(alice, "standin", nil)
		return err == nil && status == http.StatusForbidden
	})
	h.wantStatus(bob, "grouped", http.StatusOK, "")

	// A node the coordinator revokes serves nobody (fail closed), though
	// the tailnet still carries its callers.
	c.Admin(t, "POST", "/devices/"+string(h.node.DeviceID())+"/revoke", "")
	waitFor(t, "bob to be refused once the node is revoked", func() bool {
		status, _, err := h.chat(bob, "grouped", nil)
		return err == nil && status == http.StatusForbidden
	})
}

// wantStatus fails the test unless s's request for model answers status
// with a body containing want.
func (h *harness) wantStatus(s *tsnet.Server, model string, status int, want string) {
	h.t.Helper()
	got, body, err := h.chat(s, model, nil)
	if err != nil || got != status || !strings.Contains(body, want) {
		h.t.Fatalf("%s: status %d, body %q, err %v; want %d with %q", model, got, body, err, status, want)
	}
}

type harness struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	tn     *tailnettest.Tailnet
	node   *tailnet.Node
	url    string // the guard's base URL on the tailnet
}

// start starts and runs the node gpu-1 with cfg, serving the models
// "standin", "private" and "grouped" from one stand-in server; it stops
// when the test ends.
func (h *harness) start(cfg tailnet.Config) {
	cfg.Models = append(cfg.Models, tailnettest.Models(h.t)...)
	cfg.ControlURL, cfg.Hostname, cfg.StateDir = h.tn.URL, "gpu-1", h.t.TempDir()
	cfg.Store, cfg.Ephemeral, cfg.ShutdownTimeout = new(mem.Store), true, -1
	var err error
	if h.node, err = tailnet.Start(h.ctx, cfg); err != nil {
		h.t.Fatal(err)
	}
	h.url = tailnettest.Run(h.t, h.ctx, h.node)
}

func (h *harness) chat(s *tsnet.Server, model string, header http.Header) (int, string, error) {
	return tailnettest.Chat(h.ctx, s, h.url, model, header)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
