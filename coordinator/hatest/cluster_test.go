package hatest

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/internal/pgtest"
	"github.com/moatmesh/moat/internal/testclock"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// cluster is n coordinator replicas on one PostgreSQL schema, reached
// through a round-robin proxy at their public URL.
type cluster struct {
	proxy *rrProxy
	reps  []*coordtest.Coord
	clock *testclock.Clock
}

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	dsn := pgtest.FreshSchema(t, pgtest.URL(t, "replica tests"))
	c := &cluster{proxy: startProxy(t), clock: testclock.New()}
	// Every replica is given the same seal key, as operators do with
	// --seal-key-file; everything else they share is in the database.
	var sealKey [32]byte
	rand.Read(sealKey[:])
	var addrs []string
	for range n {
		r := coordtest.Start(t, func(cfg *coordinator.Config) {
			cfg.PublicURL, cfg.Database, cfg.DataDir, cfg.Now = c.proxy.URL(), dsn, t.TempDir(), c.clock.Now
			cfg.SealKey, cfg.SealKeySource = sealKey, "the test's seal key"
		})
		c.reps = append(c.reps, r)
		addrs = append(addrs, strings.TrimPrefix(r.URL, "http://"))
	}
	c.proxy.setBackends(addrs)
	return c
}

// noKeepAlive is a transport that opens a new connection for every
// request, so that consecutive requests through the proxy go to
// different replicas.
func noKeepAlive() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	return tr
}

// person is a local user of the embedded provider with their secrets.
type person struct{ email, password, totp string }

// code returns p's TOTP code now and moves the clock past its step, so
// the next code is a fresh one.
func (c *cluster) code(t testing.TB, p *person) string {
	t.Helper()
	code, err := mfa.Code(p.totp, c.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	c.clock.Advance(mfa.Period)
	return code
}

// addPerson creates a user and sets up their account through the proxy
// (the setup page and its form on different replicas).
func (c *cluster) addPerson(t testing.TB, email string, admin bool) *person {
	t.Helper()
	link, err := idp.AddUser(context.Background(), c.reps[0].Store(), email, "", admin, nil, c.proxy.URL(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	page, err := browsertest.New(noKeepAlive()).Get(link)
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("setup page: %v, status %d", err, statusOf(page))
	}
	p := &person{email: email, password: "correct horse battery staple", totp: page.Text("code")}
	if p.totp == "" {
		t.Fatalf("setup page shows no TOTP secret:\n%s", page.Body)
	}
	page, err = page.Submit(map[string]string{"password": p.password, "confirm": p.password, "code": c.code(t, p)})
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("account setup through the proxy: %v, status %d:\n%s", err, statusOf(page), bodyOf(page))
	}
	return p
}

func statusOf(p *browsertest.Page) int {
	if p == nil {
		return 0
	}
	return p.Status
}

func bodyOf(p *browsertest.Page) string {
	if p == nil {
		return ""
	}
	return p.Body
}

// client is a control client of base (the proxy or one replica) that
// opens a new connection for every request.
func client(t testing.TB, base string, cred wire.Secret) *control.Client {
	t.Helper()
	cl, err := control.New(control.Config{URL: base, Credential: cred, Transport: noKeepAlive()})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// signIn signs a new device of p in through the proxy: the device's
// calls and every page of the browser's sign-in land on replicas in
// turn.
func (c *cluster) signIn(t testing.TB, p *person, hostname string) *wire.LoginResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := client(t, c.proxy.URL(), "")
	priv, _ := key.NewPrivate()
	start, err := cl.StartLogin(ctx, wire.LoginRequest{Key: priv.Public(), Hostname: hostname, OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := browsertest.New(noKeepAlive()).Get(start.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	for i, fields := range []map[string]string{
		nil, // confirm the device
		{"email": p.email, "password": p.password},
		{"code": c.code(t, p)},
	} {
		if page, err = page.Submit(fields); err != nil {
			t.Fatalf("sign-in step %d: %v", i, err)
		}
	}
	if !page.Contains("is now connected as") {
		t.Fatalf("sign-in through the proxy did not finish (status %d):\n%s", page.Status, page.Body)
	}
	res, err := cl.WaitLogin(ctx, start.Poll)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// signInUI signs p in to the web UI through the proxy and returns the
// browser holding the session.
func (c *cluster) signInUI(t testing.TB, p *person) *browsertest.Browser {
	t.Helper()
	b := browsertest.New(noKeepAlive())
	page, err := b.Get(c.proxy.URL() + "/ui/login")
	if err != nil {
		t.Fatal(err)
	}
	if page, err = page.Submit(map[string]string{"email": p.email, "password": p.password}); err != nil {
		t.Fatal(err)
	}
	if page, err = page.Submit(map[string]string{"code": c.code(t, p)}); err != nil {
		t.Fatal(err)
	}
	if page.Status != http.StatusOK || page.URL.Path != "/ui/" {
		t.Fatalf("UI sign-in through the proxy ended at %s with status %d:\n%s", page.URL, page.Status, page.Body)
	}
	return b
}

// enrollNode joins a node serving models through replica r and returns
// its credential and device ID.
func enrollNode(t testing.TB, r *coordtest.Coord, hostname string, models ...string) (wire.Secret, wire.DeviceID) {
	t.Helper()
	var ads []wire.ModelAd
	for _, m := range models {
		ads = append(ads, wire.ModelAd{Name: m})
	}
	priv, _ := key.NewPrivate()
	res, err := client(t, r.URL, "").Enroll(context.Background(), wire.EnrollRequest{
		AuthKey: wire.Secret(r.EnrollKey(t, "tag:gpu")), Key: priv.Public(), Hostname: hostname, Models: ads})
	if err != nil {
		t.Fatal(err)
	}
	return res.Credential, res.DeviceID
}

// stream follows one device's netmap stream (Stream: it ends when the
// coordinator ends it).
type stream struct {
	ch   chan *wire.NetMap
	errc chan error
}

func openStream(t testing.TB, cl *control.Client) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &stream{ch: make(chan *wire.NetMap, 64), errc: make(chan error, 1)}
	go func() {
		s.errc <- cl.Stream(ctx, 0, func(nm *wire.NetMap) error { s.ch <- nm; return nil })
	}()
	return s
}

// next waits up to limit for a netmap that satisfies ok and returns when
// it arrived.
func (s *stream) next(t testing.TB, what string, limit time.Duration, ok func(*wire.NetMap) bool) time.Time {
	t.Helper()
	deadline := time.After(limit)
	for {
		select {
		case nm := <-s.ch:
			if ok(nm) {
				return time.Now()
			}
		case err := <-s.errc:
			t.Fatalf("waiting for %s: stream ended: %v", what, err)
		case <-deadline:
			t.Fatalf("no netmap with %s within %v", what, limit)
		}
	}
}

func hasPeer(id wire.DeviceID) func(*wire.NetMap) bool {
	return func(nm *wire.NetMap) bool {
		for _, p := range nm.Peers {
			if p.Identity.DeviceID == id {
				return true
			}
		}
		return false
	}
}

func not(f func(*wire.NetMap) bool) func(*wire.NetMap) bool {
	return func(nm *wire.NetMap) bool { return !f(nm) }
}

// get fetches u with b and fails unless it answers 200.
func get(t testing.TB, b *browsertest.Browser, u string) *browsertest.Page {
	t.Helper()
	page, err := b.Get(u)
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("GET %s: %v, status %d:\n%s", u, err, statusOf(page), bodyOf(page))
	}
	return page
}
