package main

import (
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

const wgPolicy = `{
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:ml"], "models": ["llama"] } ],
}`

func TestWGConfig(t *testing.T) {
	c := coordtest.Start(t)
	ctx := context.Background()
	c.SavePolicy(t, wgPolicy)
	ek := c.EnrollKey(t, "tag:gpu")
	nodeKey, _ := key.NewPrivate()
	ctl, _ := newTestControl(c.URL)
	if _, err := ctl.Enroll(ctx, wire.EnrollRequest{AuthKey: wire.Secret(ek), Key: nodeKey.Public(), Hostname: "gpu-1",
		Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:41641")}, Models: []wire.ModelAd{{Name: "llama"}}}); err != nil {
		t.Fatal(err)
	}

	alice := c.AddPerson(t, "alice@example.com", false)
	errc := signInThrough(t, c, alice)
	code, out, errOut := run(t, t.TempDir(), "wg-config", "--coordinator", c.URL, "--name", "alice-phone")
	if code != 0 {
		t.Fatalf("moat wg-config: exit %d\n%s", code, errOut)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[Interface]", "PrivateKey = ", "Address = 100.64.", "[Peer]", "PublicKey = " + nodeKey.Public().String(),
		"Endpoint = 192.0.2.7:41641", "PersistentKeepalive = 25", "models: llama", "alice@example.com"} {
		if !strings.Contains(out, want) {
			t.Fatalf("configuration lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, c.URL) {
		t.Fatalf("the sign-in URL was not printed:\n%s", errOut)
	}
	ds, _ := c.Store().Devices(ctx)
	var found bool
	for _, d := range ds {
		if d.Kind == store.KindWGConfig && d.Hostname == "alice-phone" && !d.Expiry.IsZero() {
			found = true
		}
	}
	if !found {
		t.Fatal("the coordinator did not record a wgconfig device with an expiry")
	}
	// wireguard-tools accepts it.
	if _, err := exec.LookPath("wg-quick"); err != nil {
		t.Log("wg-quick not installed (apt-get install wireguard-tools); skipped its check")
		return
	}
	path := filepath.Join(t.TempDir(), "moat0.conf")
	os.WriteFile(path, []byte(out), 0o600)
	stripped, err := exec.Command("wg-quick", "strip", path).CombinedOutput()
	if err != nil {
		t.Fatalf("wg-quick strip refused the configuration: %v\n%s", err, stripped)
	}
	if !strings.Contains(string(stripped), "PrivateKey") || strings.Contains(string(stripped), "Address") {
		t.Fatalf("wg-quick strip output:\n%s", stripped)
	}
}

func newTestControl(url string) (*control.Client, error) {
	return control.New(control.Config{URL: url})
}
