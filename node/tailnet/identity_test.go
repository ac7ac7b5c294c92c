package tailnet

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"tailscale.com/client/tailscale/apitype"
	"tailscale.com/tailcfg"
)

func TestIdentify(t *testing.T) {
	capOf := func(v string) tailcfg.PeerCapMap {
		return tailcfg.PeerCapMap{DefaultCapName: {tailcfg.RawMessage(v)}}
	}
	person := &tailcfg.UserProfile{LoginName: "Alice@Example.com", DisplayName: "Alice"}
	for _, tc := range []struct {
		name       string
		node       tailcfg.Node
		user       *tailcfg.UserProfile
		caps       tailcfg.PeerCapMap
		login      string
		tags       []string
		groups     []string
		wantErr    bool
		wantUnknow bool
	}{
		{name: "person", node: tailcfg.Node{StableID: "n1", Name: "laptop.tail.ts.net."}, user: person, login: "alice@example.com"},
		{name: "person with groups", node: tailcfg.Node{StableID: "n1"}, user: person, caps: capOf(`{"groups":["ml","ops"]}`),
			login: "alice@example.com", groups: []string{"ml", "ops"}},
		{name: "tagged node is its tags only", node: tailcfg.Node{StableID: "n2", Tags: []string{"tag:ci", "tag:b"}}, user: person,
			caps: capOf(`{"groups":["ml"]}`), tags: []string{"tag:b", "tag:ci"}},
		{name: "no login", node: tailcfg.Node{StableID: "n3"}, user: &tailcfg.UserProfile{}, wantErr: true, wantUnknow: true},
		{name: "expired by control", node: tailcfg.Node{StableID: "n4", Expired: true}, user: person, wantErr: true},
		{name: "past key expiry", node: tailcfg.Node{StableID: "n5", KeyExpiry: time.Now().Add(-time.Second)}, user: person, wantErr: true},
		{name: "bad capability", node: tailcfg.Node{StableID: "n6"}, user: person, caps: capOf(`{"groups":"ml"}`), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := identify(&apitype.WhoIsResponse{Node: &tc.node, UserProfile: tc.user, CapMap: tc.caps}, DefaultCapName)
			if (err != nil) != tc.wantErr || errors.Is(err, errUnknown) != tc.wantUnknow {
				t.Fatalf("err %v, want error %v (unknown %v)", err, tc.wantErr, tc.wantUnknow)
			}
			if err != nil {
				return
			}
			if id.Login != tc.login || !slices.Equal(id.Tags, tc.tags) || !slices.Equal(id.Groups, tc.groups) ||
				string(id.DeviceID) != "tailnet:"+string(tc.node.StableID) {
				b, _ := json.Marshal(id)
				t.Errorf("identity %s; want login %q tags %v groups %v", b, tc.login, tc.tags, tc.groups)
			}
			if tc.login != "" && id.UserID != "tailnet:"+tc.login {
				t.Errorf("user id %q, want tailnet:%s", id.UserID, tc.login)
			}
		})
	}
	if _, err := identify(&apitype.WhoIsResponse{}, DefaultCapName); !errors.Is(err, errUnknown) {
		t.Errorf("no node: err %v, want errUnknown", err)
	}
}
