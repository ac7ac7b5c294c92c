package coordinator

import (
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// testPolicy lets alice (and group:ml) use llama on tag:gpu nodes; bob
// has no grant.
const testPolicy = `{
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:ml"], "models": ["llama"], "mfa": "12h", "limits": { "rpm": 60 } } ],
  "tests": [
    { "src": "alice@example.com", "accept": ["model:llama"] },
    { "src": "bob@example.com", "deny": ["model:llama"] },
  ],
}`

// tagsOnly declares the tags the tests' enrollment keys carry and grants
// nothing: the built-in policy with tags that keys may name.
const tagsOnly = `{ "tagOwners": { "tag:gpu": [], "tag:other": [] } }`

func jsonBody(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// enrollNode makes an enrollment key through the admin API and joins a
// node with it.
func (tc *testCoord) enrollNode(t *testing.T, tok string, models ...string) (*testDevice, *wire.EnrollResult) {
	t.Helper()
	var ads []wire.ModelAd
	for _, m := range models {
		ads = append(ads, wire.ModelAd{Name: m})
	}
	return tc.enrollNodeAds(t, tok, "gpu-1", ads)
}

// enrollNodeAds is enrollNode with full model advertisements.
func (tc *testCoord) enrollNodeAds(t *testing.T, tok, hostname string, ads []wire.ModelAd) (*testDevice, *wire.EnrollResult) {
	t.Helper()
	status, body := tc.admin(t, tok, "POST", "/enroll-keys", `{"tags":["tag:gpu"]}`)
	if status != http.StatusCreated {
		t.Fatalf("create enrollment key: %d %s", status, body)
	}
	var ek struct{ Key, Install string }
	json.Unmarshal([]byte(body), &ek)
	if !strings.HasPrefix(ek.Key, "moat_ek_") || strings.Contains(ek.Install, ek.Key) || !strings.Contains(ek.Install, "--key -") {
		t.Fatalf("enrollment key answer: %s", body)
	}
	priv, _ := key.NewPrivate()
	req := wire.EnrollRequest{AuthKey: wire.Secret(ek.Key), Key: priv.Public(), Hostname: hostname,
		Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:41641")}, Models: ads}
	res, err := tc.client(t, "").Enroll(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return &testDevice{priv: priv, c: tc.client(t, res.Credential)}, res
}

func (tc *testCoord) savePolicy(t *testing.T, tok, text string) {
	t.Helper()
	if status, body := tc.admin(t, tok, "PUT", "/policy", jsonBody(policyBody{Text: text, Message: "test"})); status != http.StatusOK {
		t.Fatalf("save policy: %d %s", status, body)
	}
}

func TestSignInEnrollAndNetmaps(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	alice := tc.addPerson(t, "alice@example.com", false)
	laptop := tc.signIn(t, alice, "alice-laptop")
	if len(laptop.res.Addresses) != 2 || !wire.IPv4Range.Contains(laptop.res.Addresses[0]) || !wire.IPv6Range.Contains(laptop.res.Addresses[1]) {
		t.Fatalf("device addresses %v: want one in %s and one in %s", laptop.res.Addresses, wire.IPv4Range, wire.IPv6Range)
	}
	if d := laptop.res.Expiry.Sub(tc.clock.Now()); d < 11*time.Hour || d > 12*time.Hour {
		t.Fatalf("device expires in %v, want about 12h", d)
	}
	w := laptop.watch(t)
	first := w.next(t, "the first netmap", func(*wire.NetMap) bool { return true })
	if first.Self.Identity.Login != "alice@example.com" || first.Self.Identity.LastMFA.IsZero() || len(first.Peers) != 0 {
		t.Fatalf("first netmap: self %+v, %d peers; want alice with an MFA time and no peers (deny-all policy)", first.Self.Identity, len(first.Peers))
	}

	node, nres := tc.enrollNode(t, tok, "llama")
	nw := node.watch(t)
	nw.next(t, "the node's first netmap", func(nm *wire.NetMap) bool { return nm.Rules != nil })
	w.quiet(t, 300*time.Millisecond, "the built-in policy grants nothing, so a new node changes nothing for alice")

	tc.savePolicy(t, tok, testPolicy)
	nm := w.next(t, "the node as a peer", hasPeer(string(nres.DeviceID)))
	p := nm.Peers[0]
	if !p.Key.Equal(node.priv.Public()) || strings.Join(p.Models, ",") != "llama" || p.KeepAlive == 0 {
		t.Fatalf("alice sees the node as %+v", p)
	}
	nn := nw.next(t, "alice as a caller", hasPeer(string(laptop.res.DeviceID)))
	if a := nn.Peers[0].Access; len(a) != 1 || a[0].Model != "llama" || nn.Rules.Grants[a[0].Grant].Limits.RPM != 60 {
		t.Fatalf("node's view of alice: access %+v, rules %+v", a, nn.Rules)
	}
	if nn.Peers[0].Identity.Login != "alice@example.com" || nn.Peers[0].Identity.LastMFA.IsZero() {
		t.Fatalf("node's view of alice's identity: %+v", nn.Peers[0].Identity)
	}
}

func TestOnlyAffectedDevicesUpdated(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, testPolicy)
	alice := tc.addPerson(t, "alice@example.com", false)
	bob := tc.addPerson(t, "bob@example.com", false)
	node, _ := tc.enrollNode(t, tok, "llama")
	a1, a2 := tc.signIn(t, alice, "a1"), tc.signIn(t, alice, "a2")
	b1 := tc.signIn(t, bob, "b1")
	wa2, wb1, wn := a2.watch(t), b1.watch(t), node.watch(t)
	wa2.next(t, "the node", func(nm *wire.NetMap) bool { return len(nm.Peers) == 1 })
	wb1.next(t, "bob's netmap", func(*wire.NetMap) bool { return true })
	wn.next(t, "both of alice's devices", func(nm *wire.NetMap) bool { return len(nm.Peers) == 2 })
	wn.quiet(t, 200*time.Millisecond, "nothing changed for the node since")

	// Revoking a1 changes the node's netmap (a caller gone) and nobody else's.
	if status, body := tc.admin(t, tok, "POST", "/devices/"+string(a1.res.DeviceID)+"/revoke", ""); status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", status, body)
	}
	start := time.Now()
	wn.next(t, "a1 gone", not(hasPeer(string(a1.res.DeviceID))))
	t.Logf("revocation reached the node in %v", time.Since(start))
	wa2.quiet(t, 300*time.Millisecond, "a2 has no grant on a1 and must not be woken")
	wb1.quiet(t, 300*time.Millisecond, "bob is unaffected")

	// The revoked device is refused from now on.
	err := a1.c.Stream(context.Background(), 0, func(*wire.NetMap) error { return nil })
	if !control.IsAuth(err) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked device's stream: %v, want 401 saying it was revoked", err)
	}
}

// Two replicas on one store: a policy saved through one reaches the
// netmap streams held by the other (told through the store's Bus).
func TestPolicyReachesOtherReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a resync period")
	}
	dir, clk := t.TempDir(), newClock()
	a := startCoord(t, dir, clk)
	b := startCoord(t, dir, clk)
	tok := a.adminToken(t)
	a.savePolicy(t, tok, tagsOnly)
	alice := a.addPerson(t, "alice@example.com", false)
	laptop := a.signIn(t, alice, "laptop")
	_, nres := a.enrollNode(t, tok, "llama")
	laptop.c = b.client(t, laptop.res.Credential) // the stream goes to the other replica
	w := laptop.watch(t)
	w.next(t, "a first netmap from replica b", func(*wire.NetMap) bool { return true })
	a.savePolicy(t, tok, testPolicy)
	deadline := time.After(12 * time.Second)
	for {
		select {
		case nm := <-w.ch:
			if hasPeer(string(nres.DeviceID))(nm) {
				return
			}
		case err := <-w.errc:
			t.Fatalf("stream from replica b ended: %v", err)
		case <-deadline:
			t.Fatal("a policy saved on replica a never reached replica b's stream")
		}
	}
}
