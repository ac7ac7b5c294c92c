package netmap

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// FuzzPeerJSON holds the two-part encoding of peer entries (peerjson.go)
// to json.Marshal's bytes, for any names and numbers. Each string
// argument is split at '|' into a list.
func FuzzPeerJSON(f *testing.F) {
	f.Add("alice@example.com", "Alice <A&B>", "eng|ops", "llama|qwen", "llama|openai", "llama", 3, 25, "files", "files|read")
	f.Add("", "", "", "", "", "", 0, 0, "", "")
	f.Add("\u2028\x00é\xff", "\"\\", "|", "m\"|<x>", "m\"|ollama", "\t", -1, -7, "s\n", "s\n|")
	f.Fuzz(func(t *testing.T, login, name, groups, models, apis, access string, grant, keepAlive int, mcp, mcpAccess string) {
		priv, _ := key.NewPrivate()
		wp := wire.Peer{Key: priv.Public(), Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.1")},
			Identity: wire.Identity{UserID: "u_1", Login: login, Name: name, Groups: list(groups), DeviceID: "d_1",
				LastMFA: time.Unix(1700000000, 5).UTC(), PromptKey: []byte(login)},
			Models: list(models), KeepAlive: keepAlive, MCP: list(mcp)}
		if kv := list(apis); len(kv) > 1 {
			wp.APIs = map[string]string{kv[0]: kv[1]}
		}
		for _, m := range list(access) {
			wp.Access = append(wp.Access, wire.ModelAccess{Model: m, Grant: grant})
		}
		if sv := list(mcpAccess); len(sv) > 0 {
			wp.MCPAccess = []wire.MCPAccess{{Server: sv[0], Tools: sv[1:], Grant: grant}}
		}
		de := &devEncoding{d: &store.Device{ID: "d_1"}}
		check := func() {
			t.Helper()
			want, err := json.Marshal(wp)
			if err != nil {
				t.Fatal(err)
			}
			got, err := de.peerFragment(&wp)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.json, want) {
				t.Fatalf("encoded\n%s\njson.Marshal\n%s", got.json, want)
			}
		}
		check()
		// Another view of the same device reuses the head.
		wp.Models, wp.Access, wp.KeepAlive = wp.MCP, nil, 25
		check()
	})
}

// list splits s at '|'; "" is no list.
func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "|")
}
