package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompileRandomGolden compiles random policies (a random subset of
// randomGrants) for random members (people with logins, groups and admin,
// nodes with tags, models, pins and MCP servers) and compares each
// output's digest to testdata/random.golden: the compiler's sharing
// between members (compiler_share.go) must not change what it computes.
// UPDATE_GOLDEN=1 rewrites the file after an intended change.

var randomGrants = []string{
	`{ "src": ["group:ml"], "models": ["llama-*"], "mfa": "12h" }`,
	`{ "src": ["autogroup:member"], "models": ["small"] }`,
	`{ "src": ["idp:support"], "models": ["coder", "llama-small"], "limits": { "rpm": 30 } }`,
	`{ "src": ["tag:ci"], "models": ["coder", "small"] }`,
	`{ "src": ["tag:gpu"], "models": ["small"] }`,
	`{ "src": ["autogroup:admin"], "dst": ["tag:gpu:22", "tag:tools:*"] }`,
	`{ "src": ["group:ml"], "dst": ["tag:gpu-big:8000-8100"] }`,
	`{ "src": ["tag:ci"], "dst": ["tag:gpu:80"] }`,
	`{ "src": ["group:ml"], "mcp": ["jira:search_*", "jira:get_issue"] }`,
	`{ "src": ["idp:support", "tag:ci"], "mcp": ["jira:get_issue"] }`,
	`{ "src": ["autogroup:member"], "models": ["llama-small"], "mfa": "1h" }`,
}

func randomPolicy(t *testing.T, r *rand.Rand) *Policy {
	var grants []string
	for _, g := range randomGrants {
		if r.IntN(2) == 0 {
			grants = append(grants, g)
		}
	}
	text := `{
  "groups": { "group:ml": ["alice@example.com", "idp:ml"] },
  "tagOwners": { "tag:gpu": [], "tag:gpu-big": [], "tag:ci": [], "tag:tools": [] },
  "models": {
    "llama-big": { "servedBy": ["tag:gpu-big"], "sha256": "` + strings.Repeat("ab", 32) + `" },
    "llama-small": { "servedBy": ["tag:gpu", "tag:gpu-big"], "maxOutputTokens": 2048 },
    "coder": { "servedBy": ["tag:gpu"] },
    "small": { "servedBy": ["tag:gpu"] },
  },
  "mcp": { "jira": { "servedBy": ["tag:tools"] } },
  "grants": [` + strings.Join(grants, ",") + `],
}`
	p, err := Parse("random.hujson", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func randomMembers(r *rand.Rand) []Member {
	n := 1 + r.IntN(30)
	var ms []Member
	tags := []string{"tag:gpu", "tag:gpu-big", "tag:ci", "tag:tools"}
	models := []string{"llama-big", "llama-small", "coder", "small", "odd"}
	logins := []string{"alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"}
	for i := range n {
		m := Member{ID: fmt.Sprintf("m%02d", r.IntN(60)), Addresses: []netip.Addr{netip.AddrFrom4([4]byte{100, 64, 0, byte(i)})}}
		if r.IntN(3) == 0 {
			for _, tg := range tags {
				if r.IntN(3) == 0 {
					m.Tags = append(m.Tags, tg)
				}
			}
			if len(m.Tags) == 0 {
				m.Tags = []string{tags[r.IntN(4)]}
			}
			for _, md := range models {
				if r.IntN(2) == 0 {
					m.Models = append(m.Models, md)
				}
			}
			if r.IntN(3) == 0 {
				m.MCP = []string{"jira"}
			}
			if r.IntN(4) == 0 {
				m.Pins = map[string]string{"llama-big": strings.Repeat("ab", 32)}
			}
		} else {
			m.Login = logins[r.IntN(len(logins))]
			if r.IntN(2) == 0 {
				m.Groups = []string{[]string{"ml", "support"}[r.IntN(2)]}
			}
			m.Admin = r.IntN(4) == 0
		}
		dup := false
		for _, o := range ms {
			dup = dup || o.ID == m.ID
		}
		if !dup {
			ms = append(ms, m)
		}
	}
	return ms
}

func TestCompileRandomGolden(t *testing.T) {
	const seeds = 1000
	var got []string
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 9))
		p := randomPolicy(t, r)
		c, err := p.Compile(randomMembers(r))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range c.Members {
			for j, pi := range m.PeerIndex() {
				if c.Members[pi].ID != m.Peers[j] {
					t.Fatalf("seed %d: peer %d of %s is %s, its index names %s", seed, j, m.ID, m.Peers[j], c.Members[pi].ID)
				}
			}
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		got = append(got, hex.EncodeToString(sum[:8]))
	}
	path := filepath.Join("testdata", "random.golden")
	text := strings.Join(got, "\n") + "\n"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Fields(string(want)); len(w) != len(got) {
		t.Fatalf("%s has %d digests, want %d", path, len(w), len(got))
	}
	for seed, w := range strings.Fields(string(want)) {
		if got[seed] != w {
			t.Fatalf("seed %d: compiled output differs from %s (UPDATE_GOLDEN=1 after an intended change)", seed, path)
		}
	}
}
