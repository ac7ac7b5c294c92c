package coordinator_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/mesh/wire"
)

// The coordinator's relay admits an enrolled node's key and refuses a key
// it does not know.
func TestRelayAdmitsOnlyKnownMembers(t *testing.T) {
	c := coordtest.Start(t)
	c.SavePolicy(t, `{ "tagOwners": { "tag:gpu": [] } }`)
	node, stranger := mustKey(t), mustKey(t)
	ctl, err := control.New(control.Config{URL: c.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ctl.Enroll(ctx, wire.EnrollRequest{Version: wire.Version, AuthKey: wire.Secret(c.EnrollKey(t, "tag:gpu")), Key: node.Public(), Hostname: "gpu-1"}); err != nil {
		t.Fatal(err)
	}
	dial := func(k key.Private) *relay.Client {
		rc, err := relay.NewClient(relay.ClientConfig{URL: c.URL + relay.Path, PrivateKey: k})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rc.Close() })
		return rc
	}
	known, unknown := dial(node), dial(stranger)
	waitUntil(t, func() bool { return known.Connected() && unknown.Err() != nil })
	if unknown.Connected() {
		t.Fatal("the relay admitted a key no device or node has")
	}
}

func mustKey(t *testing.T) key.Private {
	k, err := key.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}

// A member reports where its WireGuard socket may be reached; nonsense is
// refused.
func TestReportEndpoints(t *testing.T) {
	c := coordtest.Start(t)
	c.SavePolicy(t, `{ "tagOwners": { "tag:gpu": [] } }`)
	ctl, err := control.New(control.Config{URL: c.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := ctl.Enroll(ctx, wire.EnrollRequest{Version: wire.Version, AuthKey: wire.Secret(c.EnrollKey(t, "tag:gpu")), Key: mustKey(t).Public(), Hostname: "gpu-1"})
	if err != nil {
		t.Fatal(err)
	}
	ctl = ctl.WithCredential(res.Credential)
	eps := []netip.AddrPort{netip.MustParseAddrPort("203.0.113.7:41641"), netip.MustParseAddrPort("10.0.0.5:41641")}
	if err := ctl.ReportEndpoints(ctx, eps); err != nil {
		t.Fatal(err)
	}
	d, err := c.Store().Device(ctx, string(res.DeviceID))
	if err != nil || !slices.Equal(d.Endpoints, eps) {
		t.Fatalf("stored endpoints %v (%v), want %v", d.Endpoints, err, eps)
	}
	if err := ctl.ReportEndpoints(ctx, []netip.AddrPort{netip.MustParseAddrPort("203.0.113.7:0")}); err == nil {
		t.Fatal("an endpoint without a port was accepted")
	}
	if err := ctl.ReportEndpoints(ctx, make([]netip.AddrPort, wire.MaxEndpoints+1)); err == nil {
		t.Fatal("too many endpoints were accepted")
	}
}

// A member revoked while connected to the relay loses its connection at
// once and is refused when it reconnects; other members keep theirs.
func TestRelayCutsOffRevokedMembers(t *testing.T) {
	c := coordtest.Start(t)
	c.SavePolicy(t, `{ "tagOwners": { "tag:gpu": [] } }`)
	ctl, err := control.New(control.Config{URL: c.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	enroll := func(name string) (key.Private, wire.DeviceID) {
		k := mustKey(t)
		res, err := ctl.Enroll(ctx, wire.EnrollRequest{Version: wire.Version, AuthKey: wire.Secret(c.EnrollKey(t, "tag:gpu")), Key: k.Public(), Hostname: name})
		if err != nil {
			t.Fatal(err)
		}
		return k, res.DeviceID
	}
	dial := func(k key.Private) *relay.Client {
		rc, err := relay.NewClient(relay.ClientConfig{URL: c.URL + relay.Path, PrivateKey: k})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rc.Close() })
		return rc
	}
	ka, idA := enroll("gpu-a")
	kb, _ := enroll("gpu-b")
	ra, rb := dial(ka), dial(kb)
	waitUntil(t, func() bool { return ra.Connected() && rb.Connected() })

	c.Admin(t, "POST", "/devices/"+string(idA)+"/revoke", "")
	waitUntil(t, func() bool { return !ra.Connected() && ra.Err() != nil })
	if !rb.Connected() {
		t.Fatal("revoking one node cut another off the relay")
	}
	if err := ra.Send(kb.Public(), []byte("x")); err != relay.ErrNotConnected {
		t.Fatalf("the revoked node's Send = %v, want ErrNotConnected", err)
	}
}
