package coordinator

import (
	"maps"
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/wire"
)

// The API family a node advertises for a model reaches the devices that
// may use it; a node that advertises none (from before families) has
// none in the netmap, which routers read as OpenAI's.
func TestModelAPIFamilyCarried(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	policy := strings.Replace(testPolicy, `"models": { "llama": { "servedBy": ["tag:gpu"] } }`, `"models": { "llama": { "servedBy": ["tag:gpu"] }, "qwen": { "servedBy": ["tag:gpu"] } }`, 1)
	tc.savePolicy(t, tok, strings.Replace(policy, `"models": ["llama"]`, `"models": ["llama", "qwen"]`, 1))
	laptop := tc.signIn(t, tc.addPerson(t, "alice@example.com", false), "alice-laptop")
	_, old := tc.enrollNodeAds(t, tok, "gpu-old", []wire.ModelAd{{Name: "llama"}})
	_, cur := tc.enrollNodeAds(t, tok, "gpu-new", []wire.ModelAd{{Name: "llama", API: "openai"}, {Name: "qwen", API: "ollama"}})

	peer := func(nm *wire.NetMap, id wire.DeviceID) *wire.Peer {
		for i := range nm.Peers {
			if nm.Peers[i].Identity.DeviceID == id {
				return &nm.Peers[i]
			}
		}
		return nil
	}
	nm := laptop.watch(t).next(t, "both nodes", func(nm *wire.NetMap) bool {
		return peer(nm, old.DeviceID) != nil && peer(nm, cur.DeviceID) != nil && len(peer(nm, cur.DeviceID).Models) == 2
	})
	if p := peer(nm, old.DeviceID); p.APIs != nil {
		t.Errorf("node without families: apis %v", p.APIs)
	}
	if p := peer(nm, cur.DeviceID); !maps.Equal(p.APIs, map[string]string{"llama": "openai", "qwen": "ollama"}) {
		t.Errorf("node with families: models %v apis %v", p.Models, p.APIs)
	}
}
