package coordinator_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/ui"
)

// The web UI, driven headlessly through the embedded IdP with TOTP. The
// real-browser (Chromium) suite of issue 8 comes on top of these.

// signInUI signs p in to the UI in a fresh browser and returns the page
// it lands on.
func signInUI(t *testing.T, c *coordtest.Coord, p *coordtest.Person) (*browsertest.Browser, *browsertest.Page) {
	t.Helper()
	b := browsertest.New(nil)
	page, err := b.Get(c.URL + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	if page, err = page.Submit(map[string]string{"email": p.Email, "password": p.Password}); err != nil {
		t.Fatal(err)
	}
	code, err := mfa.Code(p.TOTP, c.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if page, err = page.Submit(map[string]string{"code": code}); err != nil {
		t.Fatal(err)
	}
	c.Clock.Advance(mfa.Period)
	if page.Status != http.StatusOK || page.URL.Path != "/ui/" {
		t.Fatalf("sign-in ended at %s with status %d:\n%s", page.URL, page.Status, page.Body)
	}
	return b, page
}

func get(t *testing.T, b *browsertest.Browser, u string) *browsertest.Page {
	t.Helper()
	p, err := b.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// addDevice stores a person's device as a sign-in would.
func addDevice(t *testing.T, c *coordtest.Coord, email, hostname string) *store.Device {
	t.Helper()
	ctx := context.Background()
	us, err := c.Store().Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(us, func(u *store.User) bool { return u.Email == email })
	if i < 0 {
		t.Fatalf("no user %s", email)
	}
	d := &store.Device{Kind: store.KindUser, UserID: us[i].ID, PublicKey: "key-" + hostname, Hostname: hostname,
		OS: "linux", Expiry: c.Clock.Now().Add(time.Hour), LastSeen: c.Clock.Now()}
	if err := c.Store().CreateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
	return d
}

func actions(t *testing.T, c *coordtest.Coord) []string {
	t.Helper()
	as, err := c.Store().AdminActions(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.Action+" "+a.Target)
	}
	return out
}

// testReleaseKey is a minisign public key; without one the coordinator
// gives no install command.
const testReleaseKey = "RWRuurrjpnPMYaNdZ5sDzdOzMuABLXxuoXr+D5OqOTGJT11sELqGFu4Y"

func TestUIAdmin(t *testing.T) {
	c := coordtest.Start(t, func(cfg *coordinator.Config) { cfg.ReleaseKey = testReleaseKey })
	admin := c.AddPerson(t, "root@example.com", true)
	b, page := signInUI(t, c, admin)
	if !page.Contains("Overview") || !page.Contains("devices online") || !page.Contains("<svg") {
		t.Fatalf("overview:\n%s", page.Body)
	}
	if v := "moat-coordinator dev"; !page.Contains(v) {
		t.Errorf("the page does not show the coordinator's version %q", v)
	}

	t.Run("csp", func(t *testing.T) {
		resp, err := b.Client.Get(c.URL + "/ui/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Security-Policy"); got != ui.CSP || !strings.Contains(got, "script-src 'self'") {
			t.Errorf("CSP = %q", got)
		}
		for _, ck := range b.Client.Jar.Cookies(mustURL(t, c.URL+"/ui/")) {
			if ck.Name == "moat_ui" && len(ck.Value) < 32 {
				t.Errorf("session token too short: %q", ck.Value)
			}
		}
	})

	t.Run("enrollment key", func(t *testing.T) {
		page := get(t, b, c.URL+"/ui/nodes")
		if !page.Contains("No nodes yet") {
			t.Fatalf("no empty state:\n%s", page.Body)
		}
		// A tag the policy does not declare is refused where it was typed.
		refused, err := page.Submit(map[string]string{"tags": "tag:gpu"})
		if err != nil || refused.Status != http.StatusBadRequest || !refused.Contains("tagOwners") || !refused.Contains(`action="/ui/nodes/keys"`) {
			t.Fatalf("key for an undeclared tag: %v (status %d)\n%s", err, refused.Status, refused.Body)
		}
		c.SavePolicy(t, `{ "tagOwners": { "tag:gpu": [], "tag:eu": [] } }`)
		page, err = page.Submit(map[string]string{"tags": "tag:gpu tag:eu"})
		if err != nil {
			t.Fatal(err)
		}
		if page.Status != http.StatusOK || !page.Contains("install.sh") || !page.Contains("--key -</code>") || page.Contains("--key moat_ek_") || !page.Contains(`<code id="enroll-key">moat_ek_`) || !page.Contains(`data-copy="install-cmd"`) {
			t.Fatalf("no install command (status %d):\n%s", page.Status, page.Body)
		}
		if !strings.Contains(strings.Join(actions(t, c), "\n"), "enrollkey.create") {
			t.Errorf("not in the admin trail: %q", actions(t, c))
		}
		if again := get(t, b, c.URL+"/ui/nodes"); again.Contains("moat_ek_") {
			t.Error("the key's secret is shown again")
		}

		// Revoked from the UI, the key no longer lets a host join.
		secret := regexp.MustCompile(`moat_ek_[A-Za-z0-9_-]+`).FindString(page.Body)
		id := regexp.MustCompile(`Enrollment key (ek_[a-z0-9]+) created`).FindStringSubmatch(page.Body)
		if secret == "" || id == nil {
			t.Fatalf("no key or id on the page:\n%s", page.Body)
		}
		done := confirmAndSubmit(t, b, c.URL+"/ui/nodes/keys/"+id[1]+"/revoke", "No host can join with this key")
		if done.URL.Path != "/ui/nodes" || !done.Contains("revoked") {
			t.Fatalf("after revoking the key, at %s:\n%s", done.URL, done.Body)
		}
		nk, _ := key.NewPrivate()
		ctl, _ := control.New(control.Config{URL: c.URL})
		if _, err := ctl.Enroll(t.Context(), wire.EnrollRequest{AuthKey: wire.Secret(secret), Key: nk.Public(), Hostname: "late"}); err == nil {
			t.Error("a host joined with a revoked enrollment key")
		}
		if !slices.Contains(actions(t, c), "enrollkey.revoke "+id[1]) {
			t.Errorf("revocation not in the admin trail: %q", actions(t, c))
		}
	})

	evil := addDevice(t, c, admin.Email, "<script>alert(1)</script>")
	other := addDevice(t, c, admin.Email, "laptop")

	t.Run("escaped", func(t *testing.T) {
		page := get(t, b, c.URL+"/ui/devices")
		if page.Contains("<script>alert(1)") || !page.Contains("&lt;script&gt;alert(1)&lt;/script&gt;") {
			t.Fatalf("hostname not escaped:\n%s", page.Body)
		}
	})

	t.Run("csrf", func(t *testing.T) {
		resp, err := b.Client.PostForm(c.URL+"/ui/devices/"+other.ID+"/revoke", url.Values{"csrf": {"forged"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("forged POST: status %d, want 403", resp.StatusCode)
		}
		if d, _ := c.Store().Device(context.Background(), other.ID); d == nil || d.Revoked {
			t.Error("a POST without the CSRF token revoked the device")
		}
	})

	t.Run("revoke", func(t *testing.T) {
		page := get(t, b, c.URL+"/ui/devices/"+evil.ID+"/revoke")
		if !page.Contains("cannot be undone") {
			t.Fatalf("no confirmation:\n%s", page.Body)
		}
		page, err := page.Submit(nil)
		if err != nil {
			t.Fatal(err)
		}
		if page.URL.Path != "/ui/devices" || page.Contains("alert(1)") || !page.Contains("laptop") {
			t.Fatalf("after revoking, at %s:\n%s", page.URL, page.Body)
		}
		if d, _ := c.Store().Device(context.Background(), evil.ID); d == nil || !d.Revoked {
			t.Error("device not revoked in the store")
		}
		if !slices.Contains(actions(t, c), "device.revoke "+evil.ID) {
			t.Errorf("not in the admin trail: %q", actions(t, c))
		}
	})

	t.Run("logout", func(t *testing.T) {
		ask := get(t, b, c.URL+"/ui/logout")
		if !ask.Contains("Sign out") {
			t.Fatalf("GET /ui/logout:\n%s", ask.Body)
		}
		if p := get(t, b, c.URL+"/ui/"); p.URL.Path != "/ui/" {
			t.Fatalf("GET /ui/logout signed out by itself: at %s", p.URL)
		}
		// Another site's form: no token, or a wrong one.
		for _, tok := range []string{"", "forged"} {
			resp, err := b.Client.PostForm(c.URL+"/ui/logout", url.Values{"csrf": {tok}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("sign-out with token %q: %d, want 403", tok, resp.StatusCode)
			}
		}
		if p, err := ask.Submit(nil); err != nil || !p.Contains("signed out") {
			t.Fatalf("logout: %v\n%s", err, p.Body)
		}
		if p := get(t, b, c.URL+"/ui/"); p.URL.Path == "/ui/" {
			t.Errorf("still signed in after logout: %s", p.URL)
		}
	})
}

func TestUIMember(t *testing.T) {
	c := coordtest.Start(t)
	p := c.AddPerson(t, "bob@example.com", false)
	b, _ := signInUI(t, c, p) // the user exists from the first sign-in on
	addDevice(t, c, p.Email, "bobs-laptop")
	page := get(t, b, c.URL+"/ui/")
	if !page.Contains("My access") || !page.Contains("bobs-laptop") || page.Contains(`href="/ui/devices"`) {
		t.Fatalf("member home:\n%s", page.Body)
	}
	for _, path := range []string{"/ui/devices", "/ui/nodes"} {
		if page := get(t, b, c.URL+path); page.Status != http.StatusForbidden {
			t.Errorf("member GET %s: status %d, want 403", path, page.Status)
		}
	}

	// Disabling the person ends their session at the next request.
	ctx := context.Background()
	us, _ := c.Store().Users(ctx)
	for _, u := range us {
		u.Disabled = true
		if err := c.Store().UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if page := get(t, b, c.URL+"/ui/"); page.URL.Path == "/ui/" {
		t.Errorf("a disabled person still sees %s", page.URL)
	}
}

func TestUISignedOut(t *testing.T) {
	c := coordtest.Start(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, path := range []string{"/ui/", "/ui/devices", "/ui/nodes"} {
		resp, err := client.Get(c.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
			t.Errorf("GET %s signed out: %d to %q, want 303 to /ui/login", path, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
