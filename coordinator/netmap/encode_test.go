package netmap

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// The grants the property test switches on and off.
var propGrants = []string{
	`{ "src": ["group:ml"], "models": ["llama-*"], "mfa": "12h" }`,
	`{ "src": ["autogroup:member"], "models": ["small"] }`,
	`{ "src": ["idp:support"], "models": ["coder", "llama-small"], "limits": { "rpm": 30 } }`,
	`{ "src": ["tag:ci"], "models": ["coder", "small"] }`,
	`{ "src": ["autogroup:admin"], "dst": ["tag:gpu:22", "tag:tools:*"] }`,
	`{ "src": ["group:ml"], "dst": ["tag:gpu-big:8000-8100"] }`,
	`{ "src": ["group:ml"], "mcp": ["jira:search_*", "jira:get_issue"] }`,
	`{ "src": ["idp:support", "tag:ci"], "mcp": ["jira:get_issue"] }`,
}

func propPolicy(tb testing.TB, on []bool) *policy.Policy {
	var grants []string
	for i, g := range propGrants {
		if on[i] {
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
	p, err := policy.Parse("prop.hujson", []byte(text))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// propMesh is the state the property test changes at random.
type propMesh struct {
	r       *rand.Rand
	t       testing.TB
	grants  []bool
	users   []*store.User
	devices []*store.Device
	keys    map[string][]byte
	ip      netip.Addr
	now     time.Time
	next    int
}

var (
	propTags = [][]string{{"tag:gpu"}, {"tag:gpu-big"}, {"tag:ci"}, {"tag:tools"}, {"tag:gpu", "tag:tools"}}
	propAds  = []wire.ModelAd{{Name: "llama-big", SHA256: strings.Repeat("ab", 32)}, {Name: "llama-big"}, {Name: "llama-small"},
		{Name: "coder", API: "ollama"}, {Name: "small"}, {Name: "unknown"}, {Name: "jira", API: wire.APIMCP}}
)

func (m *propMesh) device(kind store.DeviceKind, owner string) *store.Device {
	priv, _ := key.NewPrivate()
	m.next++
	m.ip = m.ip.Next()
	d := &store.Device{ID: fmt.Sprintf("d_%03d", m.next), Kind: kind, UserID: owner, PublicKey: priv.Public().String(),
		Hostname: fmt.Sprint("h", m.next), IPv4: m.ip, Created: m.now, LastMFA: m.now.Add(-time.Hour), MFAMethod: "otp"}
	if kind == store.KindNode {
		d.ID = fmt.Sprintf("n_%03d", m.next)
		d.Tags = propTags[m.r.IntN(len(propTags))]
		d.Endpoints = []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("192.0.2.1"), uint16(m.next))}
		m.models(d)
	} else {
		d.Expiry = m.now.Add(time.Duration(1+m.r.IntN(48)) * time.Hour)
	}
	return d
}

func (m *propMesh) models(d *store.Device) {
	d.Models = nil
	for _, ad := range propAds {
		if m.r.IntN(3) == 0 {
			d.Models = append(d.Models, ad)
		}
	}
}

func newPropMesh(t testing.TB, r *rand.Rand) *propMesh {
	m := &propMesh{r: r, t: t, grants: make([]bool, len(propGrants)), keys: map[string][]byte{},
		ip: netip.MustParseAddr("100.64.0.1"), now: time.Now()}
	for i := range m.grants {
		m.grants[i] = r.IntN(2) == 0
	}
	for i, login := range []string{"alice", "bob", "carol", "dave", "erin"} {
		u := &store.User{ID: fmt.Sprint("u_", i), Email: login + "@example.com", Name: login, Admin: i == 3}
		m.users = append(m.users, u)
		for range 1 + r.IntN(3) {
			m.devices = append(m.devices, m.device(store.KindUser, u.ID))
		}
	}
	for range 4 {
		m.devices = append(m.devices, m.device(store.KindNode, ""))
	}
	return m
}

// change makes one random change, and says which.
func (m *propMesh) change() string {
	pick := func() int { return m.r.IntN(len(m.devices)) }
	// Devices and people are changed as the store does: a new value.
	cow := func(i int) *store.Device { d := *m.devices[i]; m.devices[i] = &d; return &d }
	cowUser := func(i int) *store.User { u := *m.users[i]; m.users[i] = &u; return &u }
	switch m.r.IntN(14) {
	case 0, 1:
		g := m.r.IntN(len(m.grants))
		m.grants[g] = !m.grants[g]
		return fmt.Sprint("toggle grant ", g)
	case 2:
		return "save the same policy"
	case 3:
		u := cowUser(m.r.IntN(len(m.users)))
		u.Disabled = !u.Disabled
		return "disable/enable " + u.Email
	case 4:
		u := m.users[m.r.IntN(len(m.users))]
		m.devices = append(m.devices, m.device(store.KindUser, u.ID))
		return "add a device of " + u.Email
	case 5:
		m.devices = append(m.devices, m.device(store.KindNode, ""))
		return "add a node"
	case 6:
		d := cow(pick())
		d.Revoked = true
		return "revoke " + d.ID
	case 7:
		i := slices.IndexFunc(m.devices, func(d *store.Device) bool { return d.Kind == store.KindNode })
		d := cow(i + m.r.IntN(len(m.devices)-i))
		if d.Kind == store.KindNode {
			m.models(d)
		}
		return "node models of " + d.ID
	case 8:
		u := cowUser(m.r.IntN(len(m.users)))
		u.Groups = [][]string{nil, {"ml"}, {"support"}, {"ml", "support"}}[m.r.IntN(4)]
		u.Admin = m.r.IntN(3) == 0
		return "groups of " + u.Email
	case 9:
		d := cow(pick())
		switch m.r.IntN(6) {
		case 0:
			d.Hostname += "x"
		case 1:
			d.LastMFA = d.LastMFA.Add(time.Minute)
		case 2:
			d.Endpoints = append(slices.Clone(d.Endpoints), netip.MustParseAddrPort("198.51.100.1:41641"))
		case 3:
			d.MFAMethod = "hwk"
		case 4:
			priv, _ := key.NewPrivate()
			d.PublicKey = priv.Public().String()
		default:
			m.ip = m.ip.Next()
			d.IPv6 = netip.AddrFrom16(m.ip.As16())
		}
		return "refresh " + d.ID
	case 13:
		u := cowUser(m.r.IntN(len(m.users)))
		if m.r.IntN(2) == 0 {
			u.Name += "x"
		} else {
			u.Email = "x" + u.Email
		}
		return "rename " + u.ID
	case 10:
		u := m.users[m.r.IntN(len(m.users))]
		if m.keys[u.ID] == nil {
			m.keys[u.ID] = bytes.Repeat([]byte{byte(m.next)}, 32)
		} else {
			delete(m.keys, u.ID)
		}
		return "prompt key of " + u.Email
	case 11:
		m.now = m.now.Add(time.Duration(m.r.IntN(20)) * time.Hour)
		return "time passes"
	}
	return "nothing"
}

func (m *propMesh) snapshot() *Snapshot {
	s := &Snapshot{Devices: slices.Clone(m.devices), Users: map[string]*store.User{}, PromptKeys: map[string][]byte{},
		Policy: propPolicy(m.t, m.grants), Now: m.now}
	for _, u := range m.users {
		s.Users[u.ID] = u
	}
	for id, k := range m.keys {
		s.PromptKeys[id] = k
	}
	return s
}

// For random sequences of changes, the netmaps a kept encoding computes
// equal, byte for byte, those of a full recompute from nothing, and those
// of the plain encoding that shares nothing (plain_test.go).
func TestEncodingMatchesFullRecompute(t *testing.T) {
	deadline := time.Now().Add(2 * time.Second)
	for run := 0; run == 0 || time.Now().Before(deadline); run++ {
		seed := rand.Uint64()
		r := rand.New(rand.NewPCG(seed, uint64(run)))
		m := newPropMesh(t, r)
		enc := newEncoding()
		var history []string
		for step := range 40 {
			s := m.snapshot()
			var want map[string]bool
			if r.IntN(3) == 0 {
				want = map[string]bool{}
				for _, d := range m.devices {
					if r.IntN(2) == 0 {
						want[d.ID] = true
					}
				}
			}
			got, gotLive, gotNext, err := enc.frames(s, want)
			if err != nil {
				t.Fatal(err)
			}
			full, live, next, err := newEncoding().frames(s, want)
			if err != nil {
				t.Fatal(err)
			}
			msg := compareFrames(got, full)
			if msg == "" {
				msg = comparePlain(got, s)
			}
			if msg != "" || !liveEqual(gotLive, live) || !gotNext.Equal(next) {
				t.Fatalf("seed %d/%d, step %d after %q: %s (live %v/%v, next expiry %v/%v)",
					seed, run, step, history, msg, gotLive, live, gotNext, next)
			}
			history = append(history, m.change())
		}
	}
}

func liveEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// compareFrames describes the first difference between two sets of
// frames, written out with the same sequence number and time.
func compareFrames(got, want map[string]*frame) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d netmaps, want %d", len(got), len(want))
	}
	created := time.Unix(1700000000, 0)
	for id, w := range want {
		g := got[id]
		if g == nil {
			return "no netmap for " + id
		}
		var gb, wb bytes.Buffer
		if err := g.writeTo(&gb, 7, created, nil); err != nil {
			return err.Error()
		}
		if err := w.writeTo(&wb, 7, created, nil); err != nil {
			return err.Error()
		}
		if !bytes.Equal(gb.Bytes(), wb.Bytes()) {
			return fmt.Sprintf("netmap of %s:\n got %s\nwant %s", id, gb.Bytes(), wb.Bytes())
		}
		if g.digest != w.digest {
			return "digest of " + id + " differs"
		}
	}
	return ""
}

// fingerprint lists the fields of wire.Identity and wire.ModelAd by
// hand: a new field must be added there (and then counted here), or
// netmaps would keep showing its old value.
func TestFingerprintCoversTheWire(t *testing.T) {
	for _, c := range []struct {
		v    any
		want int
	}{{wire.Identity{}, 12}, {wire.ModelAd{}, 3}, {wire.Self{}, 3}, {wire.Peer{}, 10}} {
		if n := reflect.TypeOf(c.v).NumField(); n != c.want {
			t.Errorf("%T has %d fields, fingerprint knows %d: update fingerprint (encode.go) and this test", c.v, n, c.want)
		}
	}
}
