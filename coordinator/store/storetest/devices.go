package storetest

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
)

func newNode(t *testing.T, s Store, name string) *store.Device {
	t.Helper()
	d := &store.Device{Kind: store.KindNode, PublicKey: "key-" + name, Hostname: name, OS: "linux",
		Tags: []string{"tag:gpu"}, CredHash: hash("cred-" + name)}
	must(t, s.CreateDevice(ctx(t), d))
	return d
}

func testDevices(t *testing.T, s Store) {
	c := ctx(t)
	u := newUser(t, s, "alice")
	d := &store.Device{Kind: store.KindUser, UserID: u.ID, PublicKey: "pk-alice", Hostname: "laptop",
		OS: "darwin", CredHash: hash("c1"), Expiry: at(12 * time.Hour), LastMFA: at(0), MFAMethod: "hwk",
		Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641")},
		LastSeen:  at(time.Second), Created: at(0)}
	must(t, s.CreateDevice(c, d))
	if d.ID == "" {
		t.Fatalf("CreateDevice did not fill ID: %+v", d)
	}
	same(t, d.IPv4, netip.MustParseAddr("100.64.0.1"), "first IPv4")
	same(t, d.IPv6, netip.MustParseAddr("fd7a:6d6f:6174::1"), "first IPv6")
	n := &store.Device{Kind: store.KindNode, PublicKey: "pk-gpu1", Hostname: "gpu1", Tags: []string{"tag:gpu"},
		Models: []wire.ModelAd{{Name: "llama", SHA256: "ab"}}, NodeStatus: []byte(`{"ok":true}`),
		Created: at(time.Minute)}
	must(t, s.CreateDevice(c, n))

	for what, get := range map[string]func() (*store.Device, error){
		"by id":   func() (*store.Device, error) { return s.Device(c, d.ID) },
		"by key":  func() (*store.Device, error) { return s.DeviceByKey(c, "pk-alice") },
		"by cred": func() (*store.Device, error) { return s.DeviceByCredHash(c, hash("c1")) },
	} {
		got, err := get()
		must(t, err)
		same(t, got, d, "device "+what)
	}
	got, err := s.Device(c, n.ID)
	must(t, err)
	same(t, got, n, "node")
	all, err := s.Devices(c)
	must(t, err)
	same(t, all, []*store.Device{d, n}, "Devices")
	unordered, err := s.DevicesAnyOrder(c)
	must(t, err)
	if len(unordered) == 2 && unordered[0].ID == n.ID {
		unordered[0], unordered[1] = unordered[1], unordered[0]
	}
	same(t, unordered, []*store.Device{d, n}, "DevicesAnyOrder")

	must(t, s.TouchDevice(c, n.ID, at(time.Hour)))
	got, err = s.Device(c, n.ID)
	must(t, err)
	same(t, got.LastSeen, at(time.Hour), "touched")
	must(t, s.SetDeviceSoftware(c, n.ID, "moat-node/v1.2.3"))
	if got, _ := s.Device(c, n.ID); got.Software != "moat-node/v1.2.3" {
		t.Errorf("software = %q after SetDeviceSoftware", got.Software)
	}

	must(t, s.DeleteDevice(c, d.ID))
	_, err = s.Device(c, d.ID)
	wantErr(t, err, store.ErrNotFound, "deleted device")
	wantErr(t, s.DeleteDevice(c, d.ID), store.ErrNotFound, "delete twice")
	wantErr(t, s.TouchDevice(c, d.ID, at(0)), store.ErrNotFound, "touch deleted")
}

func testDeviceRefusals(t *testing.T, s Store) {
	c := ctx(t)
	n := newNode(t, s, "gpu1")
	for what, d := range map[string]*store.Device{
		"same key":  {Kind: store.KindNode, PublicKey: n.PublicKey},
		"same id":   {ID: n.ID, Kind: store.KindNode, PublicKey: "other1"},
		"same cred": {Kind: store.KindNode, PublicKey: "other2", CredHash: n.CredHash},
		"same IPv4": {Kind: store.KindNode, PublicKey: "other3", IPv4: n.IPv4},
		"same IPv6": {Kind: store.KindNode, PublicKey: "other4", IPv6: n.IPv6},
	} {
		wantErr(t, s.CreateDevice(c, d), store.ErrConflict, "create with "+what)
	}
	wantErr(t, s.CreateDevice(c, &store.Device{Kind: store.KindUser, UserID: "u_nobody", PublicKey: "k"}),
		store.ErrNotFound, "device of an unknown user")
	for what, get := range map[string]func() (*store.Device, error){
		"id":         func() (*store.Device, error) { return s.Device(c, "d_missing") },
		"key":        func() (*store.Device, error) { return s.DeviceByKey(c, "nope") },
		"cred":       func() (*store.Device, error) { return s.DeviceByCredHash(c, hash("nope")) },
		"empty cred": func() (*store.Device, error) { return s.DeviceByCredHash(c, nil) },
	} {
		_, err := get()
		wantErr(t, err, store.ErrNotFound, "device by "+what)
	}
	// A device without a credential is not found by an empty hash.
	must(t, s.CreateDevice(c, &store.Device{Kind: store.KindNode, PublicKey: "nocred"}))
	_, err := s.DeviceByCredHash(c, []byte{})
	wantErr(t, err, store.ErrNotFound, "empty cred hash")
}

func testDeviceUpdate(t *testing.T, s Store) {
	c := ctx(t)
	n := newNode(t, s, "gpu1")
	other := newNode(t, s, "gpu2")
	n.Hostname, n.Tags, n.Endpoints = "gpu1b", nil, []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:51820")}
	n.Models, n.NodeStatus, n.Expiry = []wire.ModelAd{{Name: "qwen"}}, []byte(`{}`), at(time.Hour)
	n.CredHash, n.Revoked, n.MFAMethod = hash("new cred"), true, "otp"
	must(t, s.UpdateDevice(c, n))
	got, err := s.Device(c, n.ID)
	must(t, err)
	n.Created = n.Created.UTC().Truncate(time.Microsecond)
	same(t, got, n, "updated node")

	// Addresses do not move, and a stale copy does not un-revoke.
	stale := *got
	stale.IPv4, stale.IPv6, stale.Revoked = netip.MustParseAddr("100.64.9.9"), netip.Addr{}, false
	must(t, s.UpdateDevice(c, &stale))
	got, err = s.Device(c, n.ID)
	must(t, err)
	if !got.Revoked || got.IPv4 != n.IPv4 || got.IPv6 != n.IPv6 {
		t.Fatalf("stale update moved addresses or un-revoked: %+v", got)
	}
	got.PublicKey = other.PublicKey
	wantErr(t, s.UpdateDevice(c, got), store.ErrConflict, "update to a taken key")
	wantErr(t, s.UpdateDevice(c, &store.Device{ID: "d_missing", PublicKey: "x"}), store.ErrNotFound, "update missing")
}

func testDeviceAddresses(t *testing.T, s Store) {
	c := ctx(t)
	first := newNode(t, s, "a")
	if first.Created.IsZero() || first.ID[:2] != "n_" {
		t.Fatalf("CreateDevice did not fill ID and Created: %+v", first)
	}
	must(t, s.DeleteDevice(c, first.ID))
	second := newNode(t, s, "b")
	if second.IPv4 == first.IPv4 || second.IPv6 == first.IPv6 {
		t.Fatalf("deleted device's address %v reused", first.IPv4)
	}
	// Given addresses are kept; the allocator steps over them.
	given := &store.Device{Kind: store.KindNode, PublicKey: "given", IPv4: netip.MustParseAddr("100.64.0.3"),
		IPv6: netip.MustParseAddr("fd7a:6d6f:6174::99")}
	must(t, s.CreateDevice(c, given))
	half := &store.Device{Kind: store.KindNode, PublicKey: "half", IPv6: netip.MustParseAddr("fd7a:6d6f:6174::abc")}
	must(t, s.CreateDevice(c, half))
	same(t, half.IPv4, netip.MustParseAddr("100.64.0.4"), "allocated next to a given address")
	same(t, half.IPv6, netip.MustParseAddr("fd7a:6d6f:6174::abc"), "given IPv6 kept")
}

// testDeviceAddressesConcurrent creates 300 devices from 10 goroutines:
// every address unique, in the prefixes, none ending in .0 or .255.
func testDeviceAddressesConcurrent(t *testing.T, s Store) {
	const workers, each = 10, 30
	errs := make(chan error, workers*each)
	done := make(chan struct{})
	for w := range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				errs <- s.CreateDevice(ctx(t), &store.Device{Kind: store.KindNode,
					PublicKey: fmt.Sprintf("k%d-%d", w, i)})
			}
		}()
	}
	for range workers {
		<-done
	}
	close(errs)
	for err := range errs {
		must(t, err)
	}
	all, err := s.Devices(ctx(t))
	must(t, err)
	checkAddresses(t, all, workers*each)
}

func checkAddresses(t *testing.T, all []*store.Device, want int) {
	t.Helper()
	seen := map[netip.Addr]bool{}
	for _, d := range all {
		b := d.IPv4.As4()
		if !store.MeshPrefix4.Contains(d.IPv4) || !store.MeshPrefix6.Contains(d.IPv6) || b[3] == 0 || b[3] == 255 {
			t.Fatalf("bad addresses %v %v", d.IPv4, d.IPv6)
		}
		if seen[d.IPv4] || seen[d.IPv6] {
			t.Fatalf("address given twice: %v %v", d.IPv4, d.IPv6)
		}
		seen[d.IPv4], seen[d.IPv6] = true, true
	}
	if len(all) != want {
		t.Fatalf("%d devices, want %d", len(all), want)
	}
}
