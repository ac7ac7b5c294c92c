package coordinator_test

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// The people, devices, nodes and models pages against a real
// coordinator: what an admin does there really takes effect (credentials
// stop working) and lands in the admin trail.

const peoplePolicy = `{
  "groups": { "group:ml": ["idp:ml"] },
  "tagOwners": { "tag:gpu": [] },
  "models": {
    "llama": { "servedBy": ["tag:gpu"], "sha256": "9f2c000000000000000000000000000000000000000000000000000000000000" },
    "qwen": { "servedBy": ["tag:gpu"] },
  },
  "grants": [ { "src": ["group:ml"], "models": ["llama"], "mfa": "12h", "limits": { "rpm": 60 } } ],
}`

// signInDevice signs a device of p in through the browser flow and
// returns its control client, holding its credential.
func signInDevice(t *testing.T, c *coordtest.Coord, p *coordtest.Person, hostname string) (*control.Client, wire.DeviceID) {
	return c.SignInDevice(t, p, hostname)
}

var errGotNetmap = errors.New("got a netmap")

// streamErr opens the device's netmap stream and returns nil when a
// netmap arrives, else why the coordinator refused it.
func streamErr(ctl *control.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := ctl.Stream(ctx, 0, func(*wire.NetMap) error { return errGotNetmap })
	if errors.Is(err, errGotNetmap) {
		return nil
	}
	return err
}

// confirmAndSubmit opens a confirmation page, checks it, and submits it.
func confirmAndSubmit(t *testing.T, b *browsertest.Browser, u, want string) *browsertest.Page {
	t.Helper()
	page := get(t, b, u)
	if page.Status != http.StatusOK || !page.Contains(want) || !page.Contains(`id="confirm"`) {
		t.Fatalf("confirmation %s (status %d) lacks %q:\n%s", u, page.Status, want, page.Body)
	}
	page, err := page.Submit(nil)
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func personID(t *testing.T, c *coordtest.Coord, email string) string {
	t.Helper()
	us, err := c.Store().Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.Email == email {
			return u.ID
		}
	}
	t.Fatalf("no user %s", email)
	return ""
}

func TestUIPeopleDevicesNodes(t *testing.T) {
	c := coordtest.Start(t, func(cfg *coordinator.Config) { cfg.OIDC.AuditorGroups = []string{"auditors"} })
	ctx := context.Background()
	c.SavePolicy(t, peoplePolicy)
	admin := c.AddPerson(t, "root@example.com", true)
	alice := c.AddPerson(t, "alice@example.com", false, "ml")
	auditor := c.AddPerson(t, "audit@example.com", false, "auditors")
	laptop, laptopID := signInDevice(t, c, alice, "alice-laptop")
	desktop, _ := signInDevice(t, c, alice, "alice-desktop")
	aliceID := personID(t, c, alice.Email)

	nodeKey, _ := key.NewPrivate()
	nodeCtl, _ := control.New(control.Config{URL: c.URL})
	enrolled, err := nodeCtl.Enroll(ctx, wire.EnrollRequest{AuthKey: wire.Secret(c.EnrollKey(t, "tag:gpu")), Key: nodeKey.Public(),
		Hostname: "gpu-<b>1</b>", Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.7:41641")},
		Models: []wire.ModelAd{{Name: "llama"}, {Name: "rogue"}}})
	if err != nil {
		t.Fatal(err)
	}
	nodeCtl = nodeCtl.WithCredential(enrolled.Credential)
	status := wire.NodeStatus{
		Integrity: map[string]wire.ModelIntegrity{"llama": {Reason: "weights file /m/llama.gguf does not match its pinned sha256"}},
		Lockdown:  &wire.LockdownStatus{Active: true, Scope: "host", Dropped: []wire.LockdownDrops{{Category: "egress", Packets: 42}}},
	}
	if err := nodeCtl.Advertise(ctx, nil, []wire.ModelAd{{Name: "llama"}, {Name: "rogue"}}, status); err != nil {
		t.Fatal(err)
	}

	ab, _ := signInUI(t, c, admin)
	mb, home := signInUI(t, c, alice)

	t.Run("member", func(t *testing.T) {
		for _, want := range []string{"My access", "alice-laptop", "alice-desktop", "llama", "MFA within 12h", "60 requests/min",
			"moat login --coordinator " + c.URL, "moat wg-config --coordinator " + c.URL, `id="cmd-curl"`} {
			if !home.Contains(want) {
				t.Errorf("member home lacks %q:\n%s", want, home.Body)
			}
		}
		if home.Contains("qwen") {
			t.Error("the member is shown a model the policy does not grant them")
		}
		for _, path := range []string{"/ui/people", "/ui/models", "/ui/people/" + aliceID, "/ui/devices/" + string(laptopID) + "/expire"} {
			if p := get(t, mb, c.URL+path); p.Status != http.StatusForbidden {
				t.Errorf("member GET %s: status %d, want 403", path, p.Status)
			}
		}
		resp, err := mb.Client.PostForm(c.URL+"/ui/people/"+personID(t, c, admin.Email)+"/disable", url.Values{"csrf": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("member POST disable: status %d", resp.StatusCode)
		}
	})

	t.Run("own revoke", func(t *testing.T) {
		old := addDevice(t, c, alice.Email, "old-phone")
		page := confirmAndSubmit(t, mb, c.URL+"/ui/my/devices/"+old.ID+"/revoke", "cannot be undone")
		if page.URL.Path != "/ui/my" || page.Contains("old-phone") {
			t.Fatalf("after revoking, at %s:\n%s", page.URL, page.Body)
		}
		if d, _ := c.Store().Device(ctx, old.ID); d == nil || !d.Revoked {
			t.Error("own device not revoked")
		}
		if !slices.Contains(actions(t, c), "device.revoke "+old.ID) {
			t.Errorf("not in the admin trail: %q", actions(t, c))
		}
		if p := get(t, mb, c.URL+"/ui/my/devices/"+string(enrolled.DeviceID)+"/revoke"); p.Status != http.StatusNotFound {
			t.Errorf("a member may revoke a node: status %d", p.Status)
		}
	})

	t.Run("auditor", func(t *testing.T) {
		b, _ := signInUI(t, c, auditor)
		for _, path := range []string{"/ui/people", "/ui/models", "/ui/nodes/" + string(enrolled.DeviceID) + "/revoke"} {
			if p := get(t, b, c.URL+path); p.Status != http.StatusForbidden {
				t.Errorf("auditor GET %s: status %d, want 403", path, p.Status)
			}
		}
		resp, err := b.Client.PostForm(c.URL+"/ui/devices/"+string(laptopID)+"/expire", url.Values{"csrf": {"x"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || streamErr(laptop) != nil {
			t.Errorf("auditor POST expire: status %d, and the device's key: %v", resp.StatusCode, streamErr(laptop))
		}
	})

	t.Run("pages", func(t *testing.T) {
		for path, wants := range map[string][]string{
			"/ui/people":            {"alice@example.com", "IdP MFA", "ml", `href="/ui/people/` + aliceID + `/disable"`},
			"/ui/people/" + aliceID: {"alice-laptop", "alice-desktop", "llama", "60 requests/min", "Disable…"},
			"/ui/devices":           {"alice-laptop", "moat client", "Expire now…"},
			"/ui/models": {"9f2c0000", "group:ml", "gpu-&lt;b&gt;1&lt;/b&gt;", "does not match its pinned sha256", "qwen",
				"nobody: no grant covers it", "rogue", "not in the policy", "it does not verify the pinned sha256",
				"the policy does not declare the model"},
			"/ui/nodes": {"gpu-&lt;b&gt;1&lt;/b&gt;", "1 stopped", "egress: 42 packets dropped", "active", "API token “coordtest”",
				" min old", "renewed by the node before", "node expires never",
				`href="/ui/nodes/` + string(enrolled.DeviceID) + `/revoke"`},
		} {
			page := get(t, ab, c.URL+path)
			for _, want := range wants {
				if page.Status != http.StatusOK || !page.Contains(want) {
					t.Errorf("%s (status %d) lacks %q:\n%s", path, page.Status, want, page.Body)
				}
			}
			if page.Contains("<b>1</b>") {
				t.Errorf("%s shows a hostname as HTML", path)
			}
		}
	})

	t.Run("expire", func(t *testing.T) {
		if err := streamErr(laptop); err != nil {
			t.Fatalf("before expiry: %v", err)
		}
		page := confirmAndSubmit(t, ab, c.URL+"/ui/devices/"+string(laptopID)+"/expire", "signing in again")
		if page.URL.Path != "/ui/devices" {
			t.Fatalf("after expiring, at %s:\n%s", page.URL, page.Body)
		}
		if err := streamErr(laptop); !control.IsAuth(err) || !strings.Contains(err.Error(), "expired") {
			t.Errorf("expired device's credential: %v", err)
		}
		if !slices.Contains(actions(t, c), "device.expire "+string(laptopID)) {
			t.Errorf("not in the admin trail: %q", actions(t, c))
		}
		if err := streamErr(desktop); err != nil {
			t.Errorf("another device lost its key: %v", err)
		}
	})

	t.Run("disable and enable", func(t *testing.T) {
		page := confirmAndSubmit(t, ab, c.URL+"/ui/people/"+aliceID+"/disable", "cannot sign in again")
		if page.URL.Path != "/ui/people/"+aliceID || !page.Contains("disabled") || !page.Contains("Enable…") {
			t.Fatalf("after disabling, at %s:\n%s", page.URL, page.Body)
		}
		if err := streamErr(desktop); !control.IsAuth(err) || !strings.Contains(err.Error(), "disabled") {
			t.Errorf("disabled person's device: %v", err)
		}
		if p := get(t, mb, c.URL+"/ui/"); p.URL.Path == "/ui/" {
			t.Error("the disabled person is still signed in to the UI")
		}
		confirmAndSubmit(t, ab, c.URL+"/ui/people/"+aliceID+"/enable", "can sign in again")
		if err := streamErr(desktop); err != nil {
			t.Errorf("enabled person's device: %v", err)
		}
		if p := get(t, mb, c.URL+"/ui/"); p.URL.Path == "/ui/" {
			t.Error("enabling the person brought their old UI session back")
		}
		trail := actions(t, c)
		if !slices.Contains(trail, "user.disable "+aliceID) || !slices.Contains(trail, "user.enable "+aliceID) {
			t.Errorf("not in the admin trail: %q", trail)
		}
	})

	t.Run("not oneself", func(t *testing.T) {
		id := personID(t, c, admin.Email)
		page := confirmAndSubmit(t, ab, c.URL+"/ui/people/"+id+"/disable", "cannot sign in again")
		if page.Status != http.StatusBadRequest || !page.Contains("cannot disable yourself") {
			t.Fatalf("self-disable (status %d):\n%s", page.Status, page.Body)
		}
		if u, _ := c.Store().User(ctx, id); u == nil || u.Disabled {
			t.Error("the admin disabled themselves")
		}
	})

	t.Run("revoke node", func(t *testing.T) {
		id := string(enrolled.DeviceID)
		if p := get(t, ab, c.URL+"/ui/devices/"+id+"/revoke"); p.Status != http.StatusNotFound {
			t.Errorf("a node on the devices page: status %d", p.Status)
		}
		page := confirmAndSubmit(t, ab, c.URL+"/ui/nodes/"+id+"/revoke", "new enrollment key")
		if page.URL.Path != "/ui/nodes" || page.Contains(`href="/ui/nodes/`+id+`/revoke"`) || !page.Contains("revoked") {
			t.Fatalf("after revoking, at %s:\n%s", page.URL, page.Body)
		}
		if err := nodeCtl.Advertise(ctx, nil, nil, nil); !control.IsAuth(err) {
			t.Errorf("revoked node's credential: %v", err)
		}
		if d, _ := c.Store().Device(ctx, id); d == nil || !d.Revoked || d.Kind != store.KindNode {
			t.Error("node not revoked in the store")
		}
		if !slices.Contains(actions(t, c), "device.revoke "+id) {
			t.Errorf("not in the admin trail: %q", actions(t, c))
		}
	})
}

func TestUIEmptyStates(t *testing.T) {
	cert, fingerprint, err := coordinator.SelfSignedCert(t.TempDir(), "https://198.18.0.1:8443")
	if err != nil {
		t.Fatal(err)
	}
	c := coordtest.Start(t, func(cfg *coordinator.Config) {
		cfg.SelfSignedCert, cfg.ReleaseKey = cert.Certificate[0], testReleaseKey
	})
	b, page := signInUI(t, c, c.AddPerson(t, "root@example.com", true))
	if !page.Contains(`id="no-nodes"`) || !page.Contains(c.URL+"/install.sh") || !page.Contains("--pinnedpubkey sha256//") {
		t.Errorf("overview without nodes:\n%s", page.Body)
	}
	if p := get(t, b, c.URL+"/ui/my"); !p.Contains("moat login --coordinator " + c.URL + " --coordinator-fingerprint " + fingerprint) {
		t.Errorf("my access with a self-signed coordinator, no fingerprint in the commands:\n%s", p.Body)
	}
	for path, want := range map[string]string{
		"/ui/models":  "No models yet",
		"/ui/devices": "No devices yet",
		"/ui/nodes":   "No nodes yet",
		"/ui/my":      "No devices yet",
	} {
		if p := get(t, b, c.URL+path); p.Status != http.StatusOK || !p.Contains(want) {
			t.Errorf("%s (status %d) lacks %q:\n%s", path, p.Status, want, p.Body)
		}
	}
	if p := get(t, b, c.URL+"/ui/my"); !p.Contains("No models") {
		t.Errorf("my access under the built-in policy:\n%s", p.Body)
	}
}
