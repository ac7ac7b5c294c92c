// Package coordtest starts a real coordinator for tests outside the
// coordinator package: served on a loopback port, with the embedded
// identity provider, SQLite in a temporary directory and a clock that moves
// only when told. People are created through their setup link and sign in
// headlessly with internal/browsertest, through the same pages and OIDC
// flow a browser would use.
package coordtest

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/internal/testclock"
)

// Clock starts at the real time and moves only when told, so TOTP steps
// are exact.
type Clock = testclock.Clock

// Coord is a running coordinator.
type Coord struct {
	*coordinator.Server
	URL   string // "http://127.0.0.1:PORT"
	Clock *Clock
	cfg   coordinator.Config // kept for Restart
	ts    *httptest.Server
	once  sync.Once
	token string // admin API token, made by Admin on first use
}

// Start starts a coordinator with its data in a fresh temporary directory.
// mod may adjust the configuration. It stops when the test ends.
func Start(t testing.TB, mod ...func(*coordinator.Config)) *Coord {
	t.Helper()
	c := &Coord{Clock: testclock.New()}
	var h http.Handler = http.NotFoundHandler()
	c.ts = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	c.URL = "http://" + c.ts.Listener.Addr().String()
	cfg := coordinator.Config{PublicURL: c.URL, DataDir: t.TempDir(), Now: c.Clock.Now, Logger: logger()}
	for _, m := range mod {
		m(&cfg)
	}
	s, err := coordinator.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.Server, h, c.cfg = s, s, cfg
	c.Clock.OnAdvance(func() { c.Server.ClockJumped() })
	c.ts.Start()
	t.Cleanup(c.Stop)
	return c
}

// Restart stops the coordinator if it runs and starts a new one on the
// same address with the same configuration and data directory, as when
// its process restarts: state comes back from the store, and devices and
// nodes must reconnect their netmap streams. The clock carries on. Call
// it from the test's goroutine, not while other goroutines use c.Server.
func (c *Coord) Restart(t testing.TB) {
	t.Helper()
	c.Stop()
	ln, err := net.Listen("tcp", strings.TrimPrefix(c.URL, "http://"))
	if err != nil {
		t.Fatalf("coordinator restart: listen on the old address: %v", err)
	}
	s, err := coordinator.New(context.Background(), c.cfg)
	if err != nil {
		ln.Close()
		t.Fatalf("coordinator restart: %v", err)
	}
	c.Server = s
	c.ts = &httptest.Server{Listener: ln, Config: &http.Server{Handler: s}}
	c.ts.Start()
	c.once = sync.Once{}
}

// Stop closes client connections and the coordinator. It is safe to call
// more than once.
func (c *Coord) Stop() {
	c.once.Do(func() {
		c.ts.CloseClientConnections()
		c.ts.Close()
		c.Server.Close()
	})
}

func logger() *slog.Logger {
	if os.Getenv("MOAT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Person is a local user of the embedded provider with their secrets.
type Person struct {
	Email, Password, TOTP string
}

// AddPerson creates a user through the setup link, as a person would.
func (c *Coord) AddPerson(t testing.TB, email string, admin bool, groups ...string) *Person {
	t.Helper()
	link, err := idp.AddUser(context.Background(), c.Store(), email, "", admin, groups, c.URL, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	page, err := browsertest.New(nil).Get(link)
	if err != nil {
		t.Fatal(err)
	}
	p := &Person{Email: email, Password: "correct horse battery staple", TOTP: page.Text("code")}
	if p.TOTP == "" {
		t.Fatalf("setup page shows no TOTP secret:\n%s", page.Body)
	}
	code, err := c.code(p)
	if err != nil {
		t.Fatal(err)
	}
	page, err = page.Submit(map[string]string{"password": p.Password, "confirm": p.Password, "code": code})
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("setup: %v, status %d:\n%s", err, page.Status, page.Body)
	}
	c.Clock.Advance(mfa.Period) // the next code is a fresh one
	return p
}

// code returns p's current TOTP code.
func (c *Coord) code(p *Person) (string, error) { return mfa.Code(p.TOTP, c.Clock.Now()) }

// SignIn walks a browser from a device login link through the
// confirmation page and the embedded provider's password and TOTP pages.
// It returns an error (rather than failing the test) so that it can run
// in the goroutine that stands in for the person's browser.
func (c *Coord) SignIn(authURL string, p *Person) error {
	page, err := browsertest.New(nil).Get(authURL)
	if err != nil {
		return err
	}
	code, err := c.code(p)
	if err != nil {
		return err
	}
	for i, fields := range []map[string]string{
		nil, // confirm the device
		{"email": p.Email, "password": p.Password},
		{"code": code},
	} {
		if page, err = page.Submit(fields); err != nil {
			return fmt.Errorf("sign-in step %d: %w", i, err)
		}
	}
	c.Clock.Advance(mfa.Period)
	if !page.Contains("is now connected as") {
		return fmt.Errorf("sign-in did not finish (status %d):\n%s", page.Status, page.Body)
	}
	return nil
}
