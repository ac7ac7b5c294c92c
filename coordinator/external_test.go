package coordinator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// externalIdP is a second, separate OpenID provider on its own port with
// its own users, standing in for a company's IdP (it is zitadel/oidc's op
// underneath, like the embedded one).
type externalIdP struct {
	ts     *httptest.Server
	issuer string
	users  *store.DB
	h      http.Handler // the provider, set before ts starts
	down   atomic.Bool  // answer 503 to everything, as an IdP in an outage
	seen   chan url.Values
}

func startExternalIdP(t *testing.T, clk *clock) *externalIdP {
	t.Helper()
	e := &externalIdP{seen: make(chan url.Values, 16)}
	e.ts = httptest.NewUnstartedServer(http.HandlerFunc(e.serve))
	st, err := store.Open(context.Background(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.ts.Close(); st.Close() })
	e.issuer, e.users = "http://"+e.ts.Listener.Addr().String()+idp.PathPrefix, st
	return e
}

// serve answers as the provider does, unless the IdP is down, and keeps
// the query of each authorization request.
func (e *externalIdP) serve(w http.ResponseWriter, r *http.Request) {
	if e.down.Load() {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/authorize") {
		select {
		case e.seen <- r.URL.Query():
		default:
		}
	}
	e.h.ServeHTTP(w, r)
}

// register starts the provider with the coordinator as its client.
func (e *externalIdP) register(t *testing.T, clk *clock, redirect string) {
	t.Helper()
	k, _ := seal.LoadOrCreateKey(t.TempDir() + "/k")
	p, err := idp.New(context.Background(), idp.Config{
		Issuer: e.issuer, Clients: []idp.Client{{ID: "moat", Secret: "s3cret-s3cret", RedirectURIs: []string{redirect}}},
		DataDir: t.TempDir(), Box: seal.New(k), Now: clk.Now, Insecure: true,
	}, e.users)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	e.h = p.Handler()
	e.ts.Start()
}

func TestExternalIdPWithMFA(t *testing.T) {
	clk := newClock()
	ext := startExternalIdP(t, clk)
	tc := prepareCoord(t, "", t.TempDir(), clk)
	ext.register(t, clk, tc.URL+"/oidc/callback")
	if err := tc.start(t, func(c *Config) {
		c.OIDC = OIDCConfig{Issuer: ext.issuer, ClientID: "moat", ClientSecret: "s3cret-s3cret", AdminGroups: []string{"platform"}, EmailClaim: "preferred_username"}
	}); err != nil {
		t.Fatal(err)
	}
	if tc.auth.idp != nil {
		t.Fatal("the embedded provider runs although an external issuer is configured")
	}
	if p, _ := browsertest.New(nil).Get(tc.URL + "/idp/.well-known/openid-configuration"); p.Status != http.StatusNotFound {
		t.Fatalf("/idp is served with an external issuer: %d", p.Status)
	}

	link, err := idp.AddUser(context.Background(), ext.users, "erin@example.com", "Erin", false, []string{"platform"}, "http://"+ext.ts.Listener.Addr().String(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	b := browsertest.New(nil)
	page, _ := b.Get(link)
	erin := &person{email: "erin@example.com", password: "correct horse battery staple", totp: page.Text("code")}
	page.Submit(map[string]string{"password": erin.password, "confirm": erin.password, "code": tc.code(t, erin)})
	clk.Advance(mfa.Period)

	priv, _ := key.NewPrivate()
	c := tc.client(t, "")
	start, err := c.StartLogin(context.Background(), wire.LoginRequest{Key: priv.Public(), Hostname: "erin-pc"})
	if err != nil {
		t.Fatal(err)
	}
	// The external IdP's amr proves MFA: no coordinator TOTP is asked for.
	page = tc.browse(t, browsertest.New(nil), start.AuthURL, erin)
	if !page.Contains("is now connected as erin@example.com") {
		t.Fatalf("sign-in through the external IdP did not finish:\n%s", page.Body)
	}
	res, err := c.WaitLogin(context.Background(), start.Poll)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := tc.store.Users(context.Background())
	if len(users) != 1 || users[0].Issuer != ext.issuer || users[0].Role != "admin" || users[0].TOTPSecret != nil {
		t.Fatalf("user after external sign-in: %+v; want issuer %s, admin by group, no coordinator TOTP", users[0], ext.issuer)
	}
	d, _ := tc.store.Device(context.Background(), string(res.DeviceID))
	if d.LastMFA.IsZero() {
		t.Fatal("the device has no MFA time although the IdP proved MFA")
	}
}
