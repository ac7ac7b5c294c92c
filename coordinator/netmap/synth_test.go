package netmap

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/policy"
)

// synthMesh is an in-memory snapshot of mesh m with its narrow policy,
// for benchmarks that need no store.
func synthMesh(tb testing.TB, m benchMesh) *Snapshot {
	now := time.Now()
	s := &Snapshot{Users: map[string]*store.User{}, PromptKeys: map[string][]byte{}, Now: now}
	p, err := policy.Parse("synth.hujson", []byte(m.policy(false)))
	if err != nil {
		tb.Fatal(err)
	}
	s.Policy = p
	ip := netip.MustParseAddr("100.64.0.1")
	add := func(d *store.Device) {
		priv, _ := key.NewPrivate()
		d.PublicKey, d.Created, d.IPv4 = priv.Public().String(), now, ip
		ip = ip.Next()
		s.Devices = append(s.Devices, d)
	}
	for u := range m.people {
		user := &store.User{ID: fmt.Sprintf("u_%05d", u), Email: fmt.Sprintf("u%d@example.com", u), Role: "member"}
		if m.teams > 0 {
			user.Groups = []string{fmt.Sprint("team", u%m.teams)}
		}
		s.Users[user.ID] = user
		for i := range m.perUser {
			add(&store.Device{ID: fmt.Sprintf("d_%05d_%02d", u, i), Kind: store.KindUser, UserID: user.ID, Hostname: "h",
				Expiry: now.Add(12 * time.Hour), LastMFA: now})
		}
	}
	for n := range m.nodes {
		_, tags, models := m.pool(n)
		add(&store.Device{ID: fmt.Sprintf("n_%05d", n), Kind: store.KindNode, Hostname: "gpu", Tags: tags,
			Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641")}, Models: models})
	}
	return s
}

// BenchmarkFrames10k is one full recompute of the fan-out benchmark's
// mesh, in memory: compile and encode every netmap.
func BenchmarkFrames10k(b *testing.B) { benchFrames(b, mesh10k) }

// BenchmarkFrames50k is one full recompute of the 50,000-device mesh.
func BenchmarkFrames50k(b *testing.B) { benchFrames(b, mesh50k) }

func benchFrames(b *testing.B, m benchMesh) {
	s := synthMesh(b, m)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := newEncoding().frames(s, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecomputeDevice10k is a recompute after one device joined the
// benchmark's mesh, with the encodings of the previous recompute kept.
func BenchmarkRecomputeDevice10k(b *testing.B) {
	s := synthMesh(b, mesh10k)
	enc := newEncoding()
	if _, _, _, err := enc.frames(s, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		// One device leaves and one joins: every node's netmap changes.
		d := *s.Devices[0]
		d.ID += "x"
		s.Devices[0] = &d
		if _, _, _, err := enc.frames(s, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecomputeSave10k is a recompute after a policy save that
// changes every netmap, with the encodings of the previous recompute
// kept: what the fan-out benchmark's saves cost beyond the store.
func BenchmarkRecomputeSave10k(b *testing.B) { benchSave(b, mesh10k) }

// BenchmarkRecomputeSave50k is the same for the 50,000-device mesh.
func BenchmarkRecomputeSave50k(b *testing.B) { benchSave(b, mesh50k) }

func benchSave(b *testing.B, m benchMesh) {
	s := synthMesh(b, m)
	var pols [2]*policy.Policy
	for i := range pols {
		p, err := policy.Parse("synth.hujson", []byte(m.policy(i == 0)))
		if err != nil {
			b.Fatal(err)
		}
		pols[i] = p
	}
	enc := newEncoding()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Policy = pols[i%2]
		i++
		if _, _, _, err := enc.frames(s, nil); err != nil {
			b.Fatal(err)
		}
	}
}
