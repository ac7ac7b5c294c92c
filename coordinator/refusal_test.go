package coordinator

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

func post(t *testing.T, url, contentType, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadRequestsChangeNothing(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	big := `{"hostname":"` + strings.Repeat("h", 70<<10) + `"}`
	for _, c := range []struct {
		name, path, ct, body string
		status               int
		want                 string
	}{
		{"malformed", "/api/v1/login", "application/json", `{"key":`, 400, "input ends early"},
		{"wrong type", "/api/v1/login", "application/json", `{"hostname": 7}`, 400, "field hostname"},
		{"bad key", "/api/v1/login", "application/json", `{"key":"abc","hostname":"x"}`, 400, "parse public key"},
		{"no hostname", "/api/v1/login", "application/json", `{"key":"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="}`, 400, "hostname"},
		{"oversized", "/api/v1/login", "application/json", big, 413, "too large"},
		{"not json", "/api/v1/login", "text/plain", `{}`, 415, "application/json"},
		{"unknown enroll key", "/api/v1/enroll", "application/json", `{"authKey":"moat_ek_nope","key":"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=","hostname":"n"}`, 401, "enrollment key"},
		{"unknown poll", "/api/v1/login/poll", "application/json", `{"poll":"moat_lp_nope"}`, 404, "no such login"},
	} {
		status, body := post(t, tc.URL+c.path, c.ct, c.body)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s; want %d containing %q", c.name, status, body, c.status, c.want)
		}
	}
	if ds, _ := tc.store.Devices(context.Background()); len(ds) != 0 {
		t.Fatalf("refused requests created %d devices", len(ds))
	}
	// Device and admin endpoints refuse missing, unknown and wrong-kind credentials.
	for _, c := range []struct{ path, auth, want string }{
		{"/api/v1/netmap", "", "no_credential"},
		{"/api/v1/netmap", "Bearer moat_dc_unknown", "bad_credential"},
		{"/api/v1/admin/users", "", "no_token"},
		{"/api/v1/admin/users", "Bearer moat_at_unknown", "bad_token"},
		{"/api/v1/admin/users", "Bearer moat_dc_unknown", "no_token"},
	} {
		req, _ := http.NewRequest("GET", tc.URL+c.path, nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1024)
		n, _ := resp.Body.Read(buf)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(buf[:n]), c.want) {
			t.Errorf("GET %s with %q: %d %s; want 401 %s", c.path, c.auth, resp.StatusCode, buf[:n], c.want)
		}
	}
}

func TestLoginStateMustMatchBrowser(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	alice := tc.addPerson(t, "alice@example.com", false)
	priv, _ := key.NewPrivate()
	start, err := tc.client(t, "").StartLogin(context.Background(), wire.LoginRequest{Key: priv.Public(), Hostname: "x"})
	if err != nil {
		t.Fatal(err)
	}
	id := start.AuthURL[strings.LastIndex(start.AuthURL, "/")+1:]
	b := browsertest.New(nil)
	if p, _ := b.Get(tc.URL + "/oidc/callback?state=ls_unknown&code=x"); p.Status != http.StatusNotFound {
		t.Fatalf("unknown state: %d", p.Status)
	}
	// A browser that did not start this login (no binding cookie) is refused.
	if p, _ := b.Get(tc.URL + "/oidc/callback?state=" + id + "&code=x"); p.Status != http.StatusForbidden || !p.Contains("another browser") {
		t.Fatalf("unbound state: %d %s", p.Status, p.Body)
	}
	// The first browser to continue owns the sign-in; a second one (say,
	// the victim of someone who sent them the link after opening it) is
	// refused before reaching the IdP, and cannot use the MFA pages.
	first := browsertest.New(nil)
	confirm, _ := first.Get(start.AuthURL)
	if p, _ := confirm.Submit(nil); p.Status != http.StatusOK || !p.Contains("password") {
		t.Fatalf("first browser did not reach the IdP: %d", p.Status)
	}
	second := browsertest.New(nil)
	confirm2, _ := second.Get(start.AuthURL)
	if p, _ := confirm2.Submit(nil); p.Status != http.StatusForbidden || !p.Contains("already opened in another browser") {
		t.Fatalf("second browser: %d %s", p.Status, p.Body)
	}
	if p, _ := second.Get(tc.URL + "/login/" + id + "/mfa"); p.Status != http.StatusForbidden {
		t.Fatalf("second browser on the MFA page: %d", p.Status)
	}
	// The owning browser finishes; the result can be collected once.
	page := tc.browse(t, first, start.AuthURL, alice)
	if !page.Contains("is now connected") {
		t.Fatalf("sign-in: %s", page.Body)
	}
	c := tc.client(t, "")
	if _, err := c.WaitLogin(context.Background(), start.Poll); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitLogin(context.Background(), start.Poll); err == nil {
		t.Fatal("a login result was handed out twice")
	}
	// The link is spent.
	if p, _ := browsertest.New(nil).Get(start.AuthURL); p.Status != http.StatusGone {
		t.Fatalf("spent link: %d", p.Status)
	}
}

// An IdP whose amr does not prove MFA (here: the embedded provider's
// pwd+otp, with the coordinator configured to accept only hardware keys)
// gets the coordinator's own TOTP: enrolled once, then asked every time,
// with replays refused and repeated failures locked out.
func TestCoordinatorTOTPWhenIdPDoesNotProveMFA(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.OIDC.MFAMethods = []string{"hwk"} })
	alice := tc.addPerson(t, "alice@example.com", false)
	login := func() (*browsertest.Page, *control.Client, *wire.LoginStart) {
		priv, _ := key.NewPrivate()
		c := tc.client(t, "")
		start, err := c.StartLogin(context.Background(), wire.LoginRequest{Key: priv.Public(), Hostname: "h"})
		if err != nil {
			t.Fatal(err)
		}
		return tc.browse(t, browsertest.New(nil), start.AuthURL, alice), c, start
	}
	page, c, start := login()
	secret := page.Text("code")
	if !page.Contains("authenticator app") || secret == "" {
		t.Fatalf("want the coordinator's TOTP enrollment, got:\n%s", page.Body)
	}
	code, _ := mfa.Code(secret, tc.clock.Now())
	if page, _ = page.Submit(map[string]string{"code": code}); !page.Contains("is now connected") {
		t.Fatalf("enrollment code refused:\n%s", page.Body)
	}
	if _, err := c.WaitLogin(context.Background(), start.Poll); err != nil {
		t.Fatal(err)
	}
	users, _ := tc.store.Users(context.Background())
	if len(users) != 1 {
		t.Fatalf("%d users", len(users))
	}
	if u := users[0]; u.TOTPSecret == nil || strings.Contains(string(u.TOTPSecret), secret) {
		t.Fatal("TOTP secret not stored, or stored in the clear")
	}

	// Next sign-in: a code form (no new secret); the same code again is a replay.
	page, _, _ = login()
	if page.Text("code") != "" || !page.Contains("6-digit code") {
		t.Fatalf("want the code form without a secret:\n%s", page.Body)
	}
	tc.clock.Advance(-mfa.Period) // back to the step of the code above
	if p, _ := page.Submit(map[string]string{"code": code}); p.Status != http.StatusUnauthorized || !p.Contains("already used") {
		t.Fatalf("replayed code: %d\n%s", p.Status, p.Body)
	}
	for range 5 {
		page.Submit(map[string]string{"code": "000000"})
	}
	tc.clock.Advance(mfa.Period)
	good, _ := mfa.Code(secret, tc.clock.Now())
	if p, _ := page.Submit(map[string]string{"code": good}); p.Status != http.StatusTooManyRequests {
		t.Fatalf("after 5 failures a good code must wait for the lockout: %d\n%s", p.Status, p.Body)
	}
}

func TestEnrollKeyRaceAndReuse(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	status, body := tc.admin(t, tok, "POST", "/enroll-keys", `{"tags":["tag:gpu"],"expiry":"1h"}`)
	if status != http.StatusCreated {
		t.Fatal(status, body)
	}
	secret := body[strings.Index(body, "moat_ek_"):]
	secret = secret[:strings.IndexByte(secret, '"')]
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, refused := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			priv, _ := key.NewPrivate()
			_, err := tc.client(t, "").Enroll(context.Background(), wire.EnrollRequest{AuthKey: wire.Secret(secret), Key: priv.Public(), Hostname: "n"})
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else if control.IsAuth(err) {
				refused++
			} else {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || refused != 7 {
		t.Fatalf("8 nodes raced for a single-use key: %d won, %d refused; want 1 and 7", won, refused)
	}
	// An expired key is refused too.
	_, body = tc.admin(t, tok, "POST", "/enroll-keys", `{"tags":["tag:gpu"],"expiry":"1m","reusable":true}`)
	secret = body[strings.Index(body, "moat_ek_"):]
	secret = secret[:strings.IndexByte(secret, '"')]
	tc.clock.Advance(2 * time.Minute)
	priv, _ := key.NewPrivate()
	if _, err := tc.client(t, "").Enroll(context.Background(), wire.EnrollRequest{AuthKey: wire.Secret(secret), Key: priv.Public(), Hostname: "n"}); !control.IsAuth(err) {
		t.Fatalf("expired key: %v", err)
	}
}

func TestExpiredDeviceRefusedAndDropped(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	alice := tc.addPerson(t, "alice@example.com", false)
	d := tc.signIn(t, alice, "laptop")
	tc.clock.Advance(13 * time.Hour)
	err := d.c.Stream(context.Background(), 0, func(*wire.NetMap) error { return nil })
	if !control.IsAuth(err) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired device: %v", err)
	}
}

// Sign-in requests from one address are limited to SignInRate a minute
// (and at once): exactly so many are served on a frozen clock, the next
// is refused, and a minute later there is room again. -1 lifts it.
func TestLoginFloodLimited(t *testing.T) {
	starts := func(tc *testCoord, n int) (served int) {
		for range n {
			if status, _ := post(t, tc.URL+"/api/v1/login", "application/json", `{}`); status != http.StatusTooManyRequests {
				served++
			}
		}
		return served
	}
	clk := newClock()
	tc := startCoord(t, t.TempDir(), clk)
	if n := starts(tc, DefaultSignInRate+10); n != DefaultSignInRate {
		t.Fatalf("%d login starts in a burst from one address: %d served, want the default %d", DefaultSignInRate+10, n, DefaultSignInRate)
	}
	clk.Advance(time.Minute)
	if n := starts(tc, DefaultSignInRate+10); n != DefaultSignInRate {
		t.Fatalf("a minute later %d were served, want %d again", n, DefaultSignInRate)
	}
	small := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.SignInRate = 5 })
	if n := starts(small, 8); n != 5 {
		t.Fatalf("SignInRate 5: %d of 8 served", n)
	}
	open := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.SignInRate = -1 })
	if n := starts(open, DefaultSignInRate+10); n != DefaultSignInRate+10 {
		t.Fatalf("SignInRate -1: %d of %d served", n, DefaultSignInRate+10)
	}
}

func TestRestartLosesNothing(t *testing.T) {
	dir, clk := t.TempDir(), newClock()
	tc := startCoord(t, dir, clk)
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, testPolicy)
	alice := tc.addPerson(t, "alice@example.com", false)
	d := tc.signIn(t, alice, "laptop")
	node, nres := tc.enrollNode(t, tok, "llama")
	tc.stop()

	tc2 := startCoordAt(t, tc.ts.Listener.Addr().String(), dir, clk)
	// Same device credential, same node credential, same policy: alice still sees the node.
	d.c, node.c = tc2.client(t, d.res.Credential), tc2.client(t, wire.Secret(""))
	w := d.watch(t)
	nm := w.next(t, "the node after restart", hasPeer(string(nres.DeviceID)))
	if !nm.Self.Addresses[0].IsValid() || nm.Self.Addresses[0] != d.res.Addresses[0] {
		t.Fatalf("addresses changed across restart: %v vs %v", nm.Self.Addresses, d.res.Addresses)
	}
	// Signing in again on the same key keeps the addresses.
	again := tc2.signInKey(t, alice, "laptop", d.priv)
	if again.res.DeviceID != d.res.DeviceID || again.res.Addresses[0] != d.res.Addresses[0] {
		t.Fatalf("re-login with the same key: %v %v, want %v %v", again.res.DeviceID, again.res.Addresses, d.res.DeviceID, d.res.Addresses)
	}
	if status, _ := tc2.admin(t, tok, "GET", "/users", ""); status != 200 {
		t.Fatal("admin token lost across restart")
	}
}

func TestRevokedDeviceSignsInAsNew(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	alice := tc.addPerson(t, "alice@example.com", false)
	d := tc.signIn(t, alice, "laptop")
	tc.admin(t, tok, "POST", "/devices/"+string(d.res.DeviceID)+"/revoke", "")
	again := tc.signInKey(t, alice, "laptop", d.priv)
	if again.res.DeviceID == d.res.DeviceID {
		t.Fatal("a revoked device came back to life; signing in again must make a new device")
	}
	if err := d.c.Stream(context.Background(), 0, func(*wire.NetMap) error { return nil }); !control.IsAuth(err) {
		t.Fatalf("old credential after re-login: %v", err)
	}
	w := again.watch(t)
	w.next(t, "the new device's netmap", func(*wire.NetMap) bool { return true })
}

// Anyone can learn a node's public key from a netmap; holding some valid
// enrollment key must not let them re-enroll that key and take the node
// over. The refusal comes before the key is spent.
func TestReEnrollOfLiveNodeRefused(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	node, res := tc.enrollNode(t, tok, "llama")
	_, body := tc.admin(t, tok, "POST", "/enroll-keys", `{"tags":["tag:other"]}`)
	secret := body[strings.Index(body, "moat_ek_"):]
	secret = secret[:strings.IndexByte(secret, '"')]
	_, err := tc.client(t, "").Enroll(context.Background(), wire.EnrollRequest{AuthKey: wire.Secret(secret), Key: node.priv.Public(), Hostname: "evil"})
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusConflict || ce.Code != "key_in_use" {
		t.Fatalf("re-enroll of a live node's key: %v, want 409 key_in_use", err)
	}
	d, _ := tc.store.Device(context.Background(), string(res.DeviceID))
	if strings.Join(d.Tags, ",") != "tag:gpu" || d.Hostname != "gpu-1" {
		t.Fatalf("the node changed: tags %v, hostname %q", d.Tags, d.Hostname)
	}
	// The real node's credential still works, and the attacker's key is unspent.
	if err := node.c.Advertise(context.Background(), nil, []wire.ModelAd{{Name: "llama"}}, nil); err != nil {
		t.Fatalf("the node lost its credential: %v", err)
	}
	priv, _ := key.NewPrivate()
	if _, err := tc.client(t, "").Enroll(context.Background(), wire.EnrollRequest{AuthKey: wire.Secret(secret), Key: priv.Public(), Hostname: "n2"}); err != nil {
		t.Fatalf("the refused attempt spent the enrollment key: %v", err)
	}
}

// Disabling a person takes every device of theirs out of the mesh at the
// next recompute and refuses their credentials; enabling brings them back.
func TestDisabledUserLeavesMesh(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, testPolicy)
	alice := tc.addPerson(t, "alice@example.com", false)
	d := tc.signIn(t, alice, "laptop")
	node, _ := tc.enrollNode(t, tok, "llama")
	wn := node.watch(t)
	wn.next(t, "alice as a caller", hasPeer(string(d.res.DeviceID)))
	users, _ := tc.store.Users(context.Background())
	if status, body := tc.admin(t, tok, "POST", "/users/"+users[0].ID+"/disable", ""); status != http.StatusNoContent {
		t.Fatalf("disable: %d %s", status, body)
	}
	wn.next(t, "alice gone from the node", not(hasPeer(string(d.res.DeviceID))))
	err := d.c.Stream(context.Background(), 0, func(*wire.NetMap) error { return nil })
	if !control.IsAuth(err) || !strings.Contains(err.Error(), "disabled") {
		t.Fatalf("disabled person's device: %v", err)
	}
	tc.admin(t, tok, "POST", "/users/"+users[0].ID+"/enable", "")
	wn.next(t, "alice back", hasPeer(string(d.res.DeviceID)))
}
