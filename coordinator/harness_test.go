package coordinator

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/internal/testclock"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// clock starts at the real time and moves only when told, so TOTP steps
// and expiries are exact.
type clock = testclock.Clock

func newClock() *clock { return testclock.New() }

// testCoord is a coordinator served on a loopback port, with the embedded
// provider, real SQLite in a temp dir, and a test clock.
type testCoord struct {
	*Server
	ts    *httptest.Server
	URL   string
	dir   string
	clock *clock
	// Over https (startCoordTLS): the certificate's pin for control
	// clients, and a transport trusting it for browsers.
	fingerprint string
	transport   http.RoundTripper
}

func startCoord(t *testing.T, dir string, clk *clock, mod ...func(*Config)) *testCoord {
	t.Helper()
	return startCoordAt(t, "", dir, clk, mod...)
}

// startCoordAt starts a coordinator listening on addr ("" = any free
// port); a restarted coordinator keeps its address, so its public URL and
// issuer stay the same.
func startCoordAt(t *testing.T, addr, dir string, clk *clock, mod ...func(*Config)) *testCoord {
	t.Helper()
	tc := prepareCoord(t, addr, dir, clk)
	if err := tc.start(t, mod...); err != nil {
		t.Fatal(err)
	}
	return tc
}

// prepareCoord opens a coordinator's listener, so that its URL is known
// before it starts (an external IdP registers the callback first).
func prepareCoord(t *testing.T, addr, dir string, clk *clock) *testCoord {
	t.Helper()
	tc := &testCoord{dir: dir, clock: clk}
	tc.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tc.Server.ServeHTTP(w, r) }))
	if addr != "" {
		tc.ts.Listener.Close()
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		tc.ts.Listener = ln
	}
	tc.URL = "http://" + tc.ts.Listener.Addr().String()
	return tc
}

// start starts the prepared coordinator, or returns New's error (and
// closes the listener).
// testReleaseKey is a minisign public key the test coordinators carry.
const testReleaseKey = "RWRuurrjpnPMYaNdZ5sDzdOzMuABLXxuoXr+D5OqOTGJT11sELqGFu4Y"

func (tc *testCoord) start(t *testing.T, mod ...func(*Config)) error {
	t.Helper()
	// A release key, as a deployment has, so that enrollment keys come
	// with an install command.
	cfg := Config{PublicURL: tc.URL, DataDir: tc.dir, Now: tc.clock.Now, Logger: testLogger(t), ReleaseKey: testReleaseKey}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		tc.ts.Listener.Close()
		return err
	}
	tc.Server = s
	tc.ts.Start()
	t.Cleanup(tc.stop)
	return nil
}

// startCoordTLS starts a coordinator served over https with a self-signed
// certificate, as `serve --tls=self-signed` does.
func startCoordTLS(t *testing.T, dir string, clk *clock) *testCoord {
	t.Helper()
	tc := &testCoord{dir: dir, clock: clk}
	var h http.Handler = http.NotFoundHandler()
	tc.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	tc.URL = "https://" + tc.ts.Listener.Addr().String()
	cert, fp, err := SelfSignedCert(dir, tc.URL)
	if err != nil {
		t.Fatal(err)
	}
	tc.fingerprint = fp
	tc.transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // a test browser; clients pin
	s, err := New(context.Background(), Config{PublicURL: tc.URL, DataDir: dir, Now: clk.Now, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	tc.Server, h = s, s
	tc.ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tc.ts.StartTLS()
	t.Cleanup(tc.stop)
	return tc
}

var stopOnce sync.Map

func (tc *testCoord) stop() {
	if _, done := stopOnce.LoadOrStore(tc, true); done {
		return
	}
	tc.ts.CloseClientConnections()
	tc.ts.Close()
	tc.Server.Close()
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("MOAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// person is a local user of the embedded provider with their secrets.
type person struct {
	email, password, totp string
}

// addPerson creates a user through the setup link, as a person would.
func (tc *testCoord) addPerson(t *testing.T, email string, admin bool, groups ...string) *person {
	t.Helper()
	link, err := idp.AddUser(context.Background(), tc.store, email, "", admin, groups, tc.URL, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b := browsertest.New(tc.transport)
	page, err := b.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	p := &person{email: email, password: "correct horse battery staple", totp: page.Text("code")}
	if p.totp == "" {
		t.Fatalf("setup page shows no TOTP secret:\n%s", page.Body)
	}
	page, err = page.Submit(map[string]string{"password": p.password, "confirm": p.password, "code": tc.code(t, p)})
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("setup: %v, status %d:\n%s", err, page.Status, page.Body)
	}
	tc.clock.Advance(mfa.Period) // the next code is a fresh one
	return p
}

func (tc *testCoord) code(t *testing.T, p *person) string {
	t.Helper()
	c, err := mfa.Code(p.totp, tc.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// client returns a control client for the coordinator.
func (tc *testCoord) client(t *testing.T, cred wire.Secret) *control.Client {
	t.Helper()
	c, err := control.New(control.Config{URL: tc.URL, Credential: cred, Fingerprint: tc.fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testDevice is a signed-in device.
type testDevice struct {
	priv key.Private
	res  *wire.LoginResult
	c    *control.Client
}

// signIn logs a new device in as p through the browser flow and the
// embedded provider (password, then TOTP), and returns it.
func (tc *testCoord) signIn(t *testing.T, p *person, hostname string) *testDevice {
	t.Helper()
	priv, _ := key.NewPrivate()
	return tc.signInKey(t, p, hostname, priv)
}

func (tc *testCoord) signInKey(t *testing.T, p *person, hostname string, priv key.Private) *testDevice {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := tc.client(t, "")
	start, err := c.StartLogin(ctx, wire.LoginRequest{Key: priv.Public(), Hostname: hostname, OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	page := tc.browse(t, browsertest.New(tc.transport), start.AuthURL, p)
	if !page.Contains("is now connected as") {
		t.Fatalf("sign-in did not finish (status %d):\n%s", page.Status, page.Body)
	}
	res, err := c.WaitLogin(ctx, start.Poll)
	if err != nil {
		t.Fatal(err)
	}
	return &testDevice{priv: priv, res: res, c: tc.client(t, res.Credential)}
}

// browse walks a browser from a login link through the confirmation page
// and the embedded provider's password and TOTP pages.
func (tc *testCoord) browse(t *testing.T, b *browsertest.Browser, authURL string, p *person) *browsertest.Page {
	t.Helper()
	page, err := b.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	steps := []func(*browsertest.Page) map[string]string{
		func(*browsertest.Page) map[string]string { return nil }, // confirm the device
		func(*browsertest.Page) map[string]string {
			return map[string]string{"email": p.email, "password": p.password}
		},
		func(*browsertest.Page) map[string]string { return map[string]string{"code": tc.code(t, p)} },
	}
	for i, fill := range steps {
		if page, err = page.Submit(fill(page)); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	tc.clock.Advance(mfa.Period)
	return page
}

// adminToken makes an admin API token.
func (tc *testCoord) adminToken(t *testing.T) string {
	t.Helper()
	tok, err := CreateAPIToken(context.Background(), tc.store, "test", "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// admin sends an admin API request and returns status and body.
func (tc *testCoord) admin(t *testing.T, tok, method, path, body string) (int, string) {
	t.Helper()
	return bearerRequest(t, method, tc.URL+"/api/v1/admin"+path, tok, body)
}

// bearerRequest sends a request with a bearer token and a JSON body (if
// any) and returns status and body.
func bearerRequest(t *testing.T, method, url, tok, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// watcher follows one device's netmap stream.
type watcher struct {
	ch     chan *wire.NetMap
	errc   chan error
	cancel context.CancelFunc
}

func (d *testDevice) watch(t *testing.T) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{ch: make(chan *wire.NetMap, 64), errc: make(chan error, 1), cancel: cancel}
	go func() {
		w.errc <- d.c.Stream(ctx, 0, func(nm *wire.NetMap) error {
			w.ch <- nm
			return nil
		})
	}()
	t.Cleanup(cancel)
	return w
}

// next waits for a netmap that satisfies ok, failing after 5 s.
func (w *watcher) next(t *testing.T, what string, ok func(*wire.NetMap) bool) *wire.NetMap {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case nm := <-w.ch:
			if ok(nm) {
				return nm
			}
		case err := <-w.errc:
			t.Fatalf("waiting for %s: stream ended: %v", what, err)
		case <-deadline:
			t.Fatalf("no netmap with %s within 5s", what)
		}
	}
}

// quiet asserts that no netmap arrives for d.
func (w *watcher) quiet(t *testing.T, d time.Duration, why string) {
	t.Helper()
	select {
	case nm := <-w.ch:
		t.Fatalf("unexpected netmap (seq %d, %d peers): %s", nm.Seq, len(nm.Peers), why)
	case <-time.After(d):
	}
}

func hasPeer(id string) func(*wire.NetMap) bool {
	return func(nm *wire.NetMap) bool {
		for _, p := range nm.Peers {
			if string(p.Identity.DeviceID) == id {
				return true
			}
		}
		return false
	}
}

func not(f func(*wire.NetMap) bool) func(*wire.NetMap) bool {
	return func(nm *wire.NetMap) bool { return !f(nm) }
}
