package netmap

import (
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// A tailnet map names only people (with logins mapped) and mapped tags
// that may use a model on the node, never a disabled person or an email
// two people share; without the opt-in it names nobody.
func TestTailnetMap(t *testing.T) {
	pol, err := policy.Parse("p.hujson", []byte(`{
  "tagOwners": { "tag:gpu": [], "tag:ci": [], "tag:web": [] },
  "models": { "m": { "servedBy": ["tag:gpu"] } },
  "grants": [
    { "src": ["idp:ml", "tag:ci"], "models": ["m"] },
    { "src": ["tag:web"], "models": ["m"] },
  ],
}`))
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]*store.User{}
	for _, u := range []*store.User{
		{ID: "u_a", Email: "Alice@Example.com", Groups: []string{"ml"}},
		{ID: "u_b", Email: "bob@example.com"},
		{ID: "u_d", Email: "dave@example.com", Groups: []string{"ml"}, Disabled: true},
		{ID: "u_e1", Email: "eve@example.com", Groups: []string{"ml"}},
		{ID: "u_e2", Email: "EVE@example.com", Groups: []string{"ml"}, Issuer: "other"},
	} {
		users[u.ID] = u
	}
	s := &Snapshot{Users: users, Policy: pol, Now: time.Now()}
	node := &store.Device{ID: "n_1", Kind: store.KindNode, Tags: []string{"tag:gpu"}}
	ads := []wire.ModelAd{{Name: "m"}}

	m, err := s.Tailnet(node, ads, TailnetOptions{Logins: true, Tags: []string{"tag:ci", "tag:ops"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatalf("map does not validate: %v", err)
	}
	if len(m.People) != 1 || m.People[0].Identity.Login != "alice@example.com" || m.People[0].Identity.UserID != "u_a" || len(m.People[0].Access) != 1 {
		t.Fatalf("people %+v; want alice alone, lowercased, with one access", m.People)
	}
	if len(m.Tags) != 1 || m.Tags[0].Tag != "tag:ci" {
		t.Fatalf("tags %+v; want tag:ci alone (tag:ops has no grant, tag:web is not mapped)", m.Tags)
	}
	if m.Self.DeviceID != "n_1" || m.Rules == nil || len(m.Rules.Grants) == 0 {
		t.Fatalf("self %+v, rules %+v", m.Self, m.Rules)
	}

	m, err = s.Tailnet(node, ads, TailnetOptions{Tags: []string{"tag:ci"}})
	if err != nil || len(m.People) != 0 || len(m.Tags) != 1 {
		t.Fatalf("without logins: people %+v, tags %+v, err %v; want no people", m.People, m.Tags, err)
	}
	m, err = s.Tailnet(node, nil, TailnetOptions{Logins: true})
	if err != nil || len(m.People) != 0 {
		t.Fatalf("a node serving nothing: people %+v, err %v; want none", m.People, err)
	}
}
