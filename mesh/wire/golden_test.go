package wire

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
)

// goldenNetMap is a node's netmap with every field of the rules and
// access set, and fixed keys, so that its JSON is stable.
func goldenNetMap(t *testing.T) *NetMap {
	k := func(s string) key.Public {
		p, err := key.ParsePublic(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	return &NetMap{
		Version: Version, Seq: 42, Created: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
		Self: Self{
			Key:       k("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="),
			Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("fd7a:6d6f:6174::1")},
			Identity:  Identity{Tags: []string{"tag:gpu"}, DeviceID: "n_1", DeviceName: "gpu-1"},
		},
		Peers: []Peer{{
			Key:       k("AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="),
			Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.2")},
			Identity:  Identity{UserID: "u_1", Login: "alice@example.com", DeviceID: "d_1", Expiry: time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)},
			Access:    []ModelAccess{{Model: "llama", Grant: 0}, {Model: "llama", Grant: 1}},
			MCPAccess: []MCPAccess{{Server: "jira", Tools: []string{"search_*", "get_issue"}, Grant: 0}},
		}},
		Rules: &NodeRules{
			Grants: []GrantRule{
				{ID: "grants[0]", MFA: Duration(12 * time.Hour),
					Limits: Limits{RPM: 120, TPM: 200000, Concurrency: 4, TokensPerDay: 1000000, MaxTokens: 8192},
					Guard: GuardRules{Injection: "block", Redact: []string{"secrets", "pii"}, Links: "block-external",
						Detectors: []GuardDetector{{Name: "mrn", Pattern: `MRN-\d{8}`, Validator: "luhn", Category: "pii"}}},
					Audit: AuditRules{Prompts: "hash", Retention: Duration(7 * 24 * time.Hour)}},
				{ID: "grants[1]"},
			},
			Filter:    []FilterRule{{Src: []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32")}, Ports: []PortRange{{First: 22, Last: 22}, {First: 8000, Last: 8080}}}},
			Models:    []ModelRule{{Model: "llama", MaxOutputTokens: 2048, MaxChoices: 4}},
			MCPGrants: []GrantRule{{ID: "grants[2]", Limits: Limits{RPM: 60, Concurrency: 2}, Guard: GuardRules{Injection: "flag"}}},
			MCPEgress: []MCPEgress{{Server: "jira", Dst: []string{"jira.corp.example:443", "10.2.0.0/16"}}},
		},
		Relays: []Relay{{URL: "https://moat.example.com/derp"}},
	}
}

// The JSON of a netmap is the protocol: nodes of earlier builds read it.
// UPDATE_GOLDEN=1 rewrites testdata/netmap.json; a change there is a
// protocol change (see Version).
func TestNetMapGolden(t *testing.T) {
	got, err := json.MarshalIndent(goldenNetMap(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", "netmap.json")
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("netmap JSON changed (UPDATE_GOLDEN=1 to accept, and note it in Version's history):\n%s", got)
	}
	back, err := DecodeNetMap(bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := json.MarshalIndent(back, "", "  "); !bytes.Equal(append(again, '\n'), want) {
		t.Fatalf("decoding the golden netmap lost something:\n%s", again)
	}
}
