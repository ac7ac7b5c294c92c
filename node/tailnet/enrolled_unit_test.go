package tailnet

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	tskey "tailscale.com/types/key"

	"github.com/moatmesh/moat/mesh/wire"
)

// sinkFunc is a netmapSink.
type sinkFunc func(*wire.NetMap) error

func (f sinkFunc) SetNetMap(nm *wire.NetMap) error { return f(nm) }

// TestResolveThroughView: under the coordinator's map a login is the
// person of that email (their groups, not the tailnet's), a tagged device
// only its mapped tags, and anyone else nobody; no map, nobody.
func TestResolveThroughView(t *testing.T) {
	var got *wire.NetMap
	tb := newCallers(nil, nil, sinkFunc(func(nm *wire.NetMap) error { got = nm; return nil }))
	mk := func(n byte, id wire.Identity) *caller {
		return &caller{key: tskey.NewNode().Public(), addrs: []netip.Addr{netip.AddrFrom4([4]byte{100, 64, 0, n})}, id: id}
	}
	alice := mk(1, wire.Identity{DeviceID: "tailnet:a", Login: "alice@example.com", Groups: []string{"from-tailnet"}})
	carol := mk(2, wire.Identity{DeviceID: "tailnet:c", Login: "carol@example.com"})
	ci := mk(3, wire.Identity{DeviceID: "tailnet:ci", Tags: []string{"tag:ci", "tag:other"}})
	other := mk(4, wire.Identity{DeviceID: "tailnet:o", Tags: []string{"tag:other"}})
	for _, c := range []*caller{alice, carol, ci, other} {
		if err := tb.put(c); err != nil {
			t.Fatal(err)
		}
	}
	if len(got.Peers) != 0 {
		t.Fatalf("before any map: %d peers, want none", len(got.Peers))
	}
	view := &wire.TailnetMap{Version: wire.Version, Rules: &wire.NodeRules{Grants: []wire.GrantRule{{ID: "grants[0]"}, {ID: "grants[1]"}}},
		People: []wire.TailnetPerson{{Identity: wire.Identity{UserID: "u_1", Login: "alice@example.com", Groups: []string{"ml"}},
			Access: []wire.ModelAccess{{Model: "m", Grant: 0}}}},
		Tags: []wire.TailnetTag{{Tag: "tag:ci", Access: []wire.ModelAccess{{Model: "m", Grant: 1}}}}}
	if err := tb.setView(view); err != nil {
		t.Fatal(err)
	}
	byDevice := map[wire.DeviceID]wire.Peer{}
	for _, p := range got.Peers {
		byDevice[p.Identity.DeviceID] = p
	}
	if len(byDevice) != 2 {
		t.Fatalf("peers %+v; want alice and the ci device only", got.Peers)
	}
	if a := byDevice["tailnet:a"]; a.Identity.UserID != "u_1" || !slices.Equal(a.Identity.Groups, []string{"ml"}) || len(a.Access) != 1 || a.Access[0].Grant != 0 {
		t.Errorf("alice: %+v; want the coordinator's person u_1 in ml with grant 0", a)
	}
	if c := byDevice["tailnet:ci"]; !slices.Equal(c.Identity.Tags, []string{"tag:ci"}) || len(c.Access) != 1 || c.Access[0].Grant != 1 {
		t.Errorf("ci: %+v; want tag:ci only, with grant 1", c)
	}
	if err := tb.setView(nil); err != nil {
		t.Fatal(err)
	}
	if len(got.Peers) != 0 || got.Rules != nil {
		t.Errorf("after the coordinator refused the node: %d peers, rules %v; want none", len(got.Peers), got.Rules)
	}
}

func TestResolveURL(t *testing.T) {
	for raw, want := range map[string]string{
		"https://127.0.0.1":      "127.0.0.1:443",
		"http://127.0.0.1":       "127.0.0.1:80",
		"https://[::1]:8443/api": "[::1]:8443",
	} {
		got, err := resolveURL(context.Background(), raw)
		if err != nil || len(got) != 1 || got[0].String() != want {
			t.Errorf("resolveURL(%q) = %v, %v; want [%s]", raw, got, err, want)
		}
	}
	if _, err := resolveURL(context.Background(), "not a url"); err == nil {
		t.Error("resolveURL accepted a URL without a host")
	}
}
