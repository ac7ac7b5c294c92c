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
	node, _ := enrollGPU(t, c, "gpu-1")
	known, unknown := dialRelay(t, c, node), dialRelay(t, c, mustKey(t))
	waitUntil(t, func() bool { return known.Connected() && unknown.Err() != nil })
	if unknown.Connected() {
		t.Fatal("the relay admitted a key no device or node has")
	}
}

// enrollGPU enrolls a node called name with a new key, tagged tag:gpu.
func enrollGPU(t *testing.T, c *coordtest.Coord, name string) (key.Private, *wire.EnrollResult) {
	t.Helper()
	ctl, err := control.New(control.Config{URL: c.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k := mustKey(t)
	res, err := ctl.Enroll(ctx, wire.EnrollRequest{Version: wire.Version, AuthKey: wire.Secret(c.EnrollKey(t, "tag:gpu")), Key: k.Public(), Hostname: name})
	if err != nil {
		t.Fatal(err)
	}
	return k, res
}

// dialRelay connects k to c's relay until the test ends.
func dialRelay(t *testing.T, c *coordtest.Coord, k key.Private) *relay.Client {
	t.Helper()
	rc, err := relay.NewClient(relay.ClientConfig{URL: c.URL + relay.Path, PrivateKey: k})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	return rc
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
	_, res := enrollGPU(t, c, "gpu-1")
	ctl, err := control.New(control.Config{URL: c.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
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
	ka, resA := enrollGPU(t, c, "gpu-a")
	kb, _ := enrollGPU(t, c, "gpu-b")
	ra, rb := dialRelay(t, c, ka), dialRelay(t, c, kb)
	waitUntil(t, func() bool { return ra.Connected() && rb.Connected() })

	c.Admin(t, "POST", "/devices/"+string(resA.DeviceID)+"/revoke", "")
	waitUntil(t, func() bool { return !ra.Connected() && ra.Err() != nil })
	if !rb.Connected() {
		t.Fatal("revoking one node cut another off the relay")
	}
	if err := ra.Send(kb.Public(), []byte("x")); err != relay.ErrNotConnected {
		t.Fatalf("the revoked node's Send = %v, want ErrNotConnected", err)
	}
}
