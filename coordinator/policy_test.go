package coordinator

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/wire"
)

// A model the policy pins reaches people only through nodes that verify
// exactly that pin: a node with another pin, or none, is not offered.
func TestPinnedModelOnlyFromMatchingNodes(t *testing.T) {
	const pin = "9f2c4e7a1b3d5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4"
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, strings.Replace(testPolicy, `"servedBy": ["tag:gpu"] }`, `"servedBy": ["tag:gpu"], "sha256": "`+pin+`" }`, 1))
	alice := tc.addPerson(t, "alice@example.com", false)
	laptop := tc.signIn(t, alice, "alice-laptop")
	_, wrong := tc.enrollNodeAds(t, tok, "gpu-wrong", []wire.ModelAd{{Name: "llama", SHA256: strings.Repeat("0", 64)}})
	_, none := tc.enrollNodeAds(t, tok, "gpu-none", []wire.ModelAd{{Name: "llama"}})
	// Last, so the netmap that offers it was computed with the others in.
	_, right := tc.enrollNodeAds(t, tok, "gpu-right", []wire.ModelAd{{Name: "llama", SHA256: pin}})

	serves := func(nm *wire.NetMap, id wire.DeviceID) bool {
		for _, p := range nm.Peers {
			if p.Identity.DeviceID == id {
				return slices.Contains(p.Models, "llama")
			}
		}
		return false
	}
	nm := laptop.watch(t).next(t, "llama from the pinned node", func(nm *wire.NetMap) bool { return serves(nm, right.DeviceID) })
	for _, bad := range []*wire.EnrollResult{wrong, none} {
		if serves(nm, bad.DeviceID) {
			t.Errorf("node %s with another pin is offered for llama", bad.DeviceID)
		}
	}
}

// A save that names the version it started from is refused once another
// version was saved since (the admin API; the UI saves the same way).
func TestPolicySaveOverBase(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	base := int64(0)
	body := func(text string) string { return jsonBody(policyBody{Text: text, Message: "m", Base: &base}) }
	if code, out := tc.admin(t, tok, "PUT", "/policy", body(tagsOnly)); code != http.StatusOK {
		t.Fatalf("first save over version 0: %d %s", code, out)
	}
	if code, out := tc.admin(t, tok, "PUT", "/policy", body(testPolicy)); code != http.StatusConflict || !strings.Contains(out, "saved since version 0") {
		t.Fatalf("second save over version 0: %d %s, want 409", code, out)
	}
	if pv, err := tc.store.Policy(t.Context()); err != nil || pv.Text != tagsOnly {
		t.Fatalf("policy in force after the refused save: %v %v", pv, err)
	}
}
