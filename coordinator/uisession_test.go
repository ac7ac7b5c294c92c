package coordinator_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/coordinator/store"
)

// UI sessions live in the store: a browser signed in through one replica
// is signed in on another, and signing out on one ends it everywhere.
func TestUISessionAcrossReplicas(t *testing.T) {
	dir := t.TempDir()
	onDir := func(c *coordinator.Config) { c.DataDir = dir }
	a := coordtest.Start(t, onDir)
	b := coordtest.Start(t, onDir)
	admin := a.AddPerson(t, "admin@example.com", true)
	browser, _ := signInUI(t, a, admin) // cookies are per host, not port: b gets them too

	if p := get(t, browser, b.URL+"/ui/"); p.Status != http.StatusOK || p.URL.Path != "/ui/" || !p.Contains("Overview") {
		t.Fatalf("the other replica did not know the session: %d at %s", p.Status, p.URL)
	}
	u, _ := url.Parse(a.URL + "/ui/")
	cookies := browser.Client.Jar.Cookies(u)
	if len(cookies) == 0 {
		t.Fatal("no session cookie")
	}
	if p, err := get(t, browser, b.URL+"/ui/logout").Submit(nil); err != nil || p.Status != http.StatusOK {
		t.Fatalf("sign out: %v", err)
	}
	// The jar forgot the cookie; a copy of it must be useless too.
	req, _ := http.NewRequest(http.MethodGet, a.URL+"/ui/", nil)
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("a copied cookie after sign-out on the other replica: %d to %q, want 303 to /ui/login",
			resp.StatusCode, resp.Header.Get("Location"))
	}
}

// A sign-in to the web UI proves MFA like a device's, and the people
// page says when and how.
func TestUISignInRecordsMFA(t *testing.T) {
	c := coordtest.Start(t)
	admin := c.AddPerson(t, "admin@example.com", true)
	before := c.Clock.Now()
	browser, _ := signInUI(t, c, admin)
	us, err := c.Store().Users(t.Context())
	if err != nil || len(us) != 1 {
		t.Fatalf("users: %v %v", us, err)
	}
	if u := us[0]; u.LastMFA.Before(before.Add(-time.Minute)) || u.MFAVia != store.MFAViaIdP {
		t.Fatalf("after a UI sign-in: last MFA %v via %q, want about %v via idp", u.LastMFA, u.MFAVia, before)
	}
	if p := get(t, browser, c.URL+"/ui/people"); !p.Contains("IdP MFA") || p.Contains("last never") {
		t.Errorf("people page does not show the MFA just proved:\n%s", p.Body)
	}
	if trail := actions(t, c); !slices.Contains(trail, "ui.signin "+us[0].ID) {
		t.Errorf("an admin's sign-in to the console is not in the admin trail: %q", trail)
	}
}
