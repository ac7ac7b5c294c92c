package coordinator

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// startLoginOf starts a device login for a new key.
func (tc *testCoord) startLoginOf(t *testing.T, hostname string) (*control.Client, *wire.LoginStart) {
	t.Helper()
	priv, _ := key.NewPrivate()
	c := tc.client(t, "")
	start, err := c.StartLogin(context.Background(), wire.LoginRequest{Key: priv.Public(), Hostname: hostname, OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	return c, start
}

var codeShape = regexp.MustCompile(`^[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}$`)

// The sign-in page shows the code `moat login` printed, where and when
// the login was started and a plain warning; finishing it tells the
// person a device was added and writes the admin trail.
func TestSignInPageShowsCodeAndDeviceAddedNotice(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	alice := tc.addPerson(t, "alice@example.com", false)
	c, start := tc.startLoginOf(t, "alice-laptop")
	_, other := tc.startLoginOf(t, "alice-laptop")
	if !codeShape.MatchString(start.Code) || start.Code == other.Code {
		t.Fatalf("login codes %q and %q: want two different XXXX-XXXX codes", start.Code, other.Code)
	}
	b := browsertest.New(nil)
	page, err := b.Get(start.AuthURL)
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("confirmation page: %v %d", err, page.Status)
	}
	if got := page.Text("samp"); got != start.Code {
		t.Fatalf("the page shows code %q, moat login printed %q", got, start.Code)
	}
	for _, want := range []string{"alice-laptop", "127.0.0.1", time.Now().UTC().Format("2006-01-02"), "If someone sent you this link", "do not continue"} {
		if !page.Contains(want) {
			t.Errorf("confirmation page lacks %q:\n%s", want, page.Body)
		}
	}
	if b2, _ := browsertest.New(nil).Get(other.AuthURL); b2.Text("samp") != other.Code {
		t.Fatalf("second login's page shows %q, want %q", b2.Text("samp"), other.Code)
	}

	done := tc.browse(t, b, start.AuthURL, alice)
	for _, want := range []string{"is now connected as alice@example.com", "moat added the device alice-laptop to your account", "started from 127.0.0.1", "revoke it now", tc.URL + "/ui/my"} {
		if !done.Contains(want) {
			t.Errorf("page after sign-in lacks %q:\n%s", want, done.Body)
		}
	}
	res, err := c.WaitLogin(context.Background(), start.Poll)
	if err != nil {
		t.Fatal(err)
	}
	acts, _ := tc.store.AdminActions(context.Background(), 10)
	found := false
	for _, a := range acts {
		found = found || a.Action == "device.add" && a.Target == string(res.DeviceID) && strings.Contains(a.Detail, "alice-laptop (linux) from 127.0.0.1")
	}
	if !found {
		t.Fatalf("no device.add in the admin trail for %s: %+v", res.DeviceID, acts)
	}
}

// Hostname and OS are shown on the sign-in page, so only short plain
// words are accepted, with a clear error, and nothing is created.
func TestSignInRefusesOddHostnameAndOS(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	k := `"key":"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="`
	for _, c := range []struct{ name, body, want string }{
		{"60,000-byte os", `{` + k + `,"hostname":"h","os":"` + strings.Repeat("x", 60000) + `"}`, "os: want at most 32"},
		{"os with words", `{` + k + `,"hostname":"h","os":"Verified by IT: safe to continue"}`, "os: want at most 32"},
		{"os with markup", `{` + k + `,"hostname":"h","os":"<b>x</b>"}`, "os: want at most 32"},
		{"hostname with words", `{` + k + `,"hostname":"Your IT helpdesk","os":"linux"}`, "use only letters, digits"},
		{"hostname with newline", `{` + k + `,"hostname":"a\nb","os":"linux"}`, "control"},
	} {
		status, body := post(t, tc.URL+"/api/v1/login", "application/json", c.body)
		if status != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %.200s; want 400 containing %q", c.name, status, body, c.want)
		}
	}
	if status, body := post(t, tc.URL+"/api/v1/login", "application/json", `{`+k+`,"hostname":"alice-laptop","os":"linux"}`); status != http.StatusOK {
		t.Fatalf("a plain login: %d %s", status, body)
	}
}

// A refused sign-in ends the device's poll at once with the reason, and
// the link cannot be used again.
func TestRefusedSignInEndsPoll(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.OIDC.AllowedDomains = []string{"example.org"} })
	alice := tc.addPerson(t, "alice@example.com", false)
	for _, c := range []struct {
		name   string
		refuse func(t *testing.T, authURL string) *browsertest.Page
		want   string
	}{
		{"domain not allowed", func(t *testing.T, authURL string) *browsertest.Page {
			return tc.browse(t, browsertest.New(nil), authURL, alice)
		}, "not in a domain allowed to use moat"},
		{"IdP error", func(t *testing.T, authURL string) *browsertest.Page {
			b := browsertest.New(nil)
			confirm, _ := b.Get(authURL)
			confirm.Submit(nil) // binds the login to this browser, on to the IdP
			id := authURL[strings.LastIndex(authURL, "/")+1:]
			p, _ := b.Get(tc.URL + "/oidc/callback?state=" + id + "&error=access_denied&error_description=the+person+cancelled")
			return p
		}, "access_denied: the person cancelled"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, start := tc.startLoginOf(t, "h")
			errc := make(chan error, 1)
			go func() { _, err := cl.WaitLogin(context.Background(), start.Poll); errc <- err }()
			page := c.refuse(t, start.AuthURL)
			if page.Status != http.StatusForbidden || !page.Contains(c.want) {
				t.Fatalf("browser: %d, want 403 with %q:\n%s", page.Status, c.want, page.Body)
			}
			var err error
			select {
			case err = <-errc:
			case <-time.After(5 * time.Second): // a poll otherwise waits pollWait (20 s), then again until the link expires
				t.Fatal("the poll did not end within 5 s of the refusal")
			}
			var ce *control.Error
			if !errors.As(err, &ce) || ce.Status != http.StatusForbidden || ce.Code != wire.CodeLoginRefused || !strings.Contains(ce.Message, c.want) {
				t.Fatalf("poll: %v; want 403 %s with %q", err, wire.CodeLoginRefused, c.want)
			}
			if p, _ := browsertest.New(nil).Get(start.AuthURL); p.Status != http.StatusGone || !p.Contains("refused") {
				t.Fatalf("the refused link again: %d\n%s", p.Status, p.Body)
			}
		})
	}
	if ds, _ := tc.store.Devices(context.Background()); len(ds) != 0 {
		t.Fatalf("refused sign-ins created %d devices", len(ds))
	}
}
