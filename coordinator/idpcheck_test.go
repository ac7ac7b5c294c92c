package coordinator

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/browsertest"
)

// startWithExternal registers the coordinator at a fresh external IdP (as
// client "moat" with secret s3cret-s3cret) and starts it with cfg's OIDC
// settings on top of that IdP's issuer; it returns New's error.
func startWithExternal(t *testing.T, mod func(*OIDCConfig), more ...func(*Config)) (*testCoord, *externalIdP, error) {
	t.Helper()
	clk := newClock()
	ext := startExternalIdP(t, clk)
	tc := prepareCoord(t, "", t.TempDir(), clk)
	ext.register(t, clk, tc.URL+"/oidc/callback")
	err := tc.start(t, append([]func(*Config){func(c *Config) {
		c.OIDC = OIDCConfig{Issuer: ext.issuer, ClientID: "moat", ClientSecret: "s3cret-s3cret"}
		mod(&c.OIDC)
	}}, more...)...)
	return tc, ext, err
}

// The coordinator does not start when the IdP could sign nobody in, and
// says why in the terms of its flags.
func TestStartRefusesBrokenIdP(t *testing.T) {
	for name, tt := range map[string]struct {
		mod  func(*OIDCConfig)
		want []string
	}{
		"issuer with a trailing slash": {func(o *OIDCConfig) { o.Issuer += "/" },
			[]string{"but the provider calls itself", "drop the trailing slash from --oidc-issuer"}},
		"another issuer": {func(o *OIDCConfig) { o.Issuer = strings.TrimSuffix(o.Issuer, "/idp") },
			[]string{"answered 404", "the part before /.well-known"}},
		"wrong client secret": {func(o *OIDCConfig) { o.ClientSecret = "not-the-secret" },
			[]string{`refused client "moat"`, "invalid_client", "--oidc-client-secret"}},
		"unknown client": {func(o *OIDCConfig) { o.ClientID = "nobody" },
			[]string{`refused client "nobody"`, "--oidc-client-id"}},
		"unreachable": {func(o *OIDCConfig) { o.Issuer = "http://127.0.0.1:1/idp" },
			[]string{"cannot reach the identity provider at http://127.0.0.1:1/idp/.well-known/openid-configuration", "connection refused"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := startWithExternal(t, tt.mod)
			if err == nil {
				t.Fatal("the coordinator started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "not-the-secret") || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows a secret: %s", err)
			}
		})
	}
}

// /readyz answers from the database alone: an IdP outage after start
// leaves it at 200 while moat_coordinator_idp_up drops to 0, the admin
// overview says so, and both come back with the IdP.
func TestReadyzIgnoresIdPOutage(t *testing.T) {
	tc, ext, err := startWithExternal(t, func(*OIDCConfig) {}, func(c *Config) { c.IdPCheckInterval = 20 * time.Millisecond })
	if err != nil {
		t.Fatal(err)
	}
	if up := idpUp(t, tc); up != 1 {
		t.Fatalf("moat_coordinator_idp_up = %v at start", up)
	}
	ext.down.Store(true)
	waitFor(t, "the metric to drop", func() bool { return idpUp(t, tc) == 0 })
	if code := status(t, tc.URL+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz during an IdP outage: %d, want 200", code)
	}
	o, err := uiBackend{tc.Server}.Overview(context.Background())
	if err != nil || !strings.Contains(o.IdPProblem, "503") {
		t.Fatalf("overview during the outage: %q, %v", o.IdPProblem, err)
	}
	ext.down.Store(false)
	waitFor(t, "the metric to come back", func() bool { return idpUp(t, tc) == 1 })
	if o, _ := (uiBackend{tc.Server}).Overview(context.Background()); o.IdPProblem != "" {
		t.Fatalf("overview after the outage: %q", o.IdPProblem)
	}
}

// The scopes asked for are the configured ones, in the authorization
// request the IdP receives; the default no longer asks for groups.
func TestConfiguredScopes(t *testing.T) {
	for _, tt := range []struct {
		scopes []string
		want   string
	}{
		{nil, "openid email profile"},
		{[]string{"email", "groups"}, "openid email groups"},
		{[]string{"email profile groups openid"}, "openid email profile groups"}, // one entry, as OAuth writes it
	} {
		tc, ext, err := startWithExternal(t, func(o *OIDCConfig) { o.Scopes = tt.scopes })
		if err != nil {
			t.Fatal(err)
		}
		u, err := tc.auth.authURL(context.Background(), "ls_x", "nonce", randomString())
		if err != nil {
			t.Fatal(err)
		}
		browsertest.New(nil).Get(u) // the browser goes to the IdP
		select {
		case q := <-ext.seen:
			if q.Get("scope") != tt.want {
				t.Errorf("scopes %v: the IdP saw scope=%q, want %q", tt.scopes, q.Get("scope"), tt.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the IdP saw no authorization request")
		}
	}
}

// GET / sends the browser to the UI (which signs in first).
func TestRootRedirectsToUI(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(tc.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func idpUp(t *testing.T, tc *testCoord) float64 {
	t.Helper()
	mfs, err := tc.mx.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "moat_coordinator_idp_up" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no moat_coordinator_idp_up")
	return 0
}

func status(t *testing.T, u string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
