package netmap

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// synthMesh is an in-memory snapshot of people × perUser devices plus
// nodes, for benchmarks and tests that need no store.
func synthMesh(tb testing.TB, people, perUser, nodes int, pol string) *Snapshot {
	now := time.Now()
	s := &Snapshot{Users: map[string]*store.User{}, PromptKeys: map[string][]byte{}, Now: now}
	p, err := policy.Parse("synth.hujson", []byte(pol))
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
	for u := range people {
		user := &store.User{ID: fmt.Sprintf("u_%05d", u), Email: fmt.Sprintf("u%d@example.com", u), Role: "member"}
		s.Users[user.ID] = user
		for i := range perUser {
			add(&store.Device{ID: fmt.Sprintf("d_%05d_%02d", u, i), Kind: store.KindUser, UserID: user.ID, Hostname: "h",
				Expiry: now.Add(12 * time.Hour), LastMFA: now})
		}
	}
	for n := range nodes {
		add(&store.Device{ID: fmt.Sprintf("n_%05d", n), Kind: store.KindNode, Hostname: "gpu", Tags: []string{"tag:gpu"},
			Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641")},
			Models:    []wire.ModelAd{{Name: "llama"}, {Name: "qwen"}}})
	}
	return s
}

// BenchmarkFrames10k is one full recompute of the fan-out benchmark's
// mesh, in memory: compile and encode every netmap.
func BenchmarkFrames10k(b *testing.B) {
	s := synthMesh(b, 100, benchPerUser, benchNodes, benchPolicy(`"llama"`))
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
	s := synthMesh(b, 100, benchPerUser, benchNodes, benchPolicy(`"llama"`))
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
