package policy

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestCompileGolden compiles each testdata/NAME.hujson for the members in
// testdata/NAME.members.json and compares with testdata/NAME.golden.json.
// UPDATE_GOLDEN=1 rewrites the golden files; review the diff.
func TestCompileGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.members.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, membersFile := range files {
		name := strings.TrimSuffix(filepath.Base(membersFile), ".members.json")
		t.Run(name, func(t *testing.T) {
			p, members := loadCase(t, name)
			c, err := p.Compile(members)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", name+".golden.json")
			if os.Getenv("UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("compiled output differs from %s (UPDATE_GOLDEN=1 to accept):\n%s", golden, firstDiff(string(want), string(got)))
			}
			checkInvariants(t, p, members, c)
		})
	}
}

func loadCase(t *testing.T, name string) (*Policy, []Member) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name+".hujson"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Check(name+".hujson", src)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", name+".members.json"))
	if err != nil {
		t.Fatal(err)
	}
	var members []Member
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&members); err != nil {
		t.Fatal(err)
	}
	return p, members
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range min(len(w), len(g)) {
		if w[i] != g[i] {
			return "line " + strconv.Itoa(i+1) + ":\n  want: " + w[i] + "\n  got:  " + g[i]
		}
	}
	return "lengths differ: want " + strconv.Itoa(len(w)) + " lines, got " + strconv.Itoa(len(g))
}

// checkInvariants asserts what must hold for any compiled output.
func checkInvariants(t *testing.T, p *Policy, members []Member, c *Compiled) {
	t.Helper()
	for _, m := range c.Members {
		for _, peer := range m.Peers {
			if !slices.Contains(c.Member(peer).Peers, m.ID) {
				t.Errorf("%s sees %s but not the other way round", m.ID, peer)
			}
		}
		for _, u := range m.Uses {
			node := c.Member(u.Node)
			if !slices.Contains(m.Peers, u.Node) {
				t.Errorf("%s may use models on %s, which is not its peer", m.ID, u.Node)
			}
			for _, model := range u.Models {
				if !slices.Contains(node.Serves, model) {
					t.Errorf("%s may use %s on %s, which does not serve it", m.ID, model, u.Node)
				}
				if !slices.ContainsFunc(node.AccessOf(m.ID), func(a ModelAccess) bool { return a.Model == model }) {
					t.Errorf("%s's router sends %s to %s, whose guard would refuse it", m.ID, model, u.Node)
				}
			}
		}
	}
	// A node serves only models whose servedBy tags it holds.
	for _, mem := range members {
		for _, model := range c.Member(mem.ID).Serves {
			if !hasAny(mem.Tags, p.Models[p.modelIndex[model]].ServedBy) {
				t.Errorf("%s serves %s without a servedBy tag", mem.ID, model)
			}
		}
	}
}

func TestCompileIsDeterministic(t *testing.T) {
	p, members := loadCase(t, "mesh")
	c1, _ := p.Compile(members)
	want, _ := json.Marshal(c1)
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		r.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
		c2, err := p.Compile(members)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := json.Marshal(c2); !bytes.Equal(got, want) {
			t.Fatal("output depends on member order")
		}
	}
}

func TestCompileRefusesBadMembers(t *testing.T) {
	p, _ := loadCase(t, "design")
	for _, ms := range [][]Member{
		{{ID: "a"}, {ID: "a"}},
		{{ID: ""}},
	} {
		if _, err := p.Compile(ms); err == nil {
			t.Errorf("Compile(%v) succeeded", ms)
		}
	}
}

// TestCompileMesh spells out the decisions of the mesh case that matter
// most, so a golden refresh cannot silently accept them going wrong.
func TestCompileMesh(t *testing.T) {
	p, members := loadCase(t, "mesh")
	c, err := p.Compile(members)
	if err != nil {
		t.Fatal(err)
	}
	check := func(what string, got, want []string) {
		t.Helper()
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s = %q, want %q", what, got, want)
		}
	}
	check("edge-1 serves", c.Member("edge-1").Serves, nil)
	check("edge-1 refused", c.Member("edge-1").Refused, []string{"llama-3.1-70b", "mystery-model"})
	check("gpu-1 refused", c.Member("gpu-1").Refused, []string{"llama-3.1-70b"})
	check("stray peers", c.Member("stray").Peers, nil)
	check("bob peers", c.Member("bob-laptop").Peers, []string{"gpu-1", "gpu-big-1"})
	check("ci-1 peers", c.Member("ci-1").Peers, []string{"gpu-1"})
	check("edge-1 peers", c.Member("edge-1").Peers, []string{"root-laptop"})
	check("alice-phone peers (login case ignored)", c.Member("alice-phone").Peers, []string{"gpu-1", "gpu-big-1"})

	big := c.Member("gpu-big-1")
	table, err := big.GuardTable()
	if err != nil {
		t.Fatal(err)
	}
	if g, v := table.Decide("alice-laptop", "llama-3.1-8b", 0, ""); v != Allow || g.ID != "grants[0]" {
		t.Errorf("alice fresh MFA on 8b: %v %v", g, v)
	}
	if g, v := table.Decide("alice-laptop", "llama-3.1-8b", -1, ""); v != Allow || g.ID != "grants[1]" {
		t.Errorf("alice without MFA on 8b: %v %v", g, v)
	}
	if _, v := table.Decide("alice-laptop", "llama-3.1-70b", -1, ""); v != DenyMFA {
		t.Errorf("alice without MFA on 70b: %v", v)
	}
	if _, v := table.Decide("bob-laptop", "llama-3.1-70b", 0, ""); v != Deny {
		t.Errorf("bob on 70b: %v", v)
	}
	if f := big.Rules.Filter; len(f) != 2 || len(f[1].Ports) != 1 || f[1].Ports[0] != (PortRange{8000, 8101}) {
		t.Errorf("gpu-big-1 filter = %+v, want admins on 22 and dave on 8000-8101", f)
	}
}

// A pinned model is served only by nodes that verify exactly that pin.
func TestCompilePins(t *testing.T) {
	const pin = "9f2c4e7a1b3d5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4"
	p, err := Parse("pins.hujson", []byte(`{
		"tagOwners": {"tag:gpu": []},
		"models": {"big": {"servedBy": ["tag:gpu"], "sha256": "`+pin+`"}, "small": {"servedBy": ["tag:gpu"]}},
		"grants": [{"src": ["autogroup:member"], "models": ["*"]}],
	}`))
	if err != nil {
		t.Fatal(err)
	}
	node := func(id, pin string) Member {
		m := Member{ID: id, Identity: Identity{Tags: []string{"tag:gpu"}}, Models: []string{"big", "small"}}
		if pin != "" {
			m.Pins = map[string]string{"big": pin}
		}
		return m
	}
	other := strings.Replace(pin, "9f", "00", 1)
	c, err := p.Compile([]Member{node("right", pin), node("wrong", other), node("none", "")})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{"right": "big small", "wrong": "small", "none": "small"} {
		if got := strings.Join(c.Member(id).Serves, " "); got != want {
			t.Errorf("%s serves %q, want %q", id, got, want)
		}
	}
	if got := c.Member("wrong").Refused; len(got) != 1 || got[0] != "big" {
		t.Errorf("wrong pin: refused %q, want [big]", got)
	}
}
