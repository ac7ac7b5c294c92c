package coordinator_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// Members report how they reach their peers; the nodes and devices pages
// show it per peer by hostname, and a malformed report is refused.
func TestPathsShown(t *testing.T) {
	c := coordtest.Start(t)
	c.SavePolicy(t, `{ "tagOwners": { "tag:gpu": [] }, "grants": [ { "src": ["alice@example.com"], "dst": ["tag:gpu:*"] } ] }`)
	admin := c.AddPerson(t, "root@example.com", true)
	alice := c.AddPerson(t, "alice@example.com", false)
	laptop, _ := signInDevice(t, c, alice, "alice-laptop")
	ka, resA := enrollGPU(t, c, "gpu-a")
	kb, resB := enrollGPU(t, c, "gpu-b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctlOf := func(res *wire.EnrollResult) *control.Client {
		ctl, err := control.New(control.Config{URL: c.URL})
		if err != nil {
			t.Fatal(err)
		}
		return ctl.WithCredential(res.Credential)
	}
	hs := time.Now().Add(-20 * time.Second)
	direct := wire.PathReport{Paths: []wire.PeerPath{{Peer: kb.Public(), Path: wire.PathDirect,
		Endpoint: netip.MustParseAddrPort("203.0.113.5:41641"), RTTMillis: 1.5, LastHandshake: hs}}}
	if err := ctlOf(resA).ReportPaths(ctx, direct); err != nil {
		t.Fatal(err)
	}
	relayed := wire.PathReport{Paths: []wire.PeerPath{{Peer: ka.Public(), Path: wire.PathRelay, Relay: c.URL + "/derp", LastHandshake: hs}}}
	if err := ctlOf(resB).ReportPaths(ctx, relayed); err != nil {
		t.Fatal(err)
	}
	out := wire.PathReport{Paths: []wire.PeerPath{{Peer: ka.Public(), Path: wire.PathNone}}}
	if err := laptop.ReportPaths(ctx, out); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []wire.PathReport{
		{Paths: []wire.PeerPath{{Peer: ka.Public(), Path: "teleport"}}},
		{Paths: []wire.PeerPath{{Peer: ka.Public(), Path: wire.PathDirect}}}, // no endpoint
		{Paths: make([]wire.PeerPath, wire.MaxPathReport+1)},
	} {
		err := ctlOf(resA).ReportPaths(ctx, bad)
		if e := (*control.Error)(nil); !errors.As(err, &e) || e.Status != http.StatusBadRequest {
			t.Errorf("report %+v: %v, want 400", bad.Paths[:1], err)
		}
	}

	b, _ := signInUI(t, c, admin)
	for path, wants := range map[string][]string{
		"/ui/nodes":   {"gpu-b: direct 203.0.113.5:41641", "gpu-a: relayed via " + strings.TrimPrefix(strings.TrimPrefix(c.URL, "http://"), "https://")},
		"/ui/devices": {"gpu-a: no contact"},
	} {
		page := get(t, b, c.URL+path)
		for _, want := range wants {
			if page.Status != http.StatusOK || !page.Contains(want) {
				t.Errorf("%s (status %d) lacks %q:\n%s", path, page.Status, want, page.Body)
			}
		}
	}
}
