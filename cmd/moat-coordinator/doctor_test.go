package main

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/internal/cli/clitest"
)

// TestDoctorAndStartupChecks runs a real coordinator, then doctor against
// it and against broken settings, and serve against a broken IdP (the
// running coordinator's embedded provider standing in for an external
// one), as an admin would.
func TestDoctorAndStartupChecks(t *testing.T) {
	bin := clitest.Build(t, "github.com/moatmesh/moat/cmd/moat-coordinator")
	run := func(args ...string) clitest.Result { return clitest.Run(t, bin, nil, args...) }
	addr, data := freeAddr(t), t.TempDir()
	url := "http://" + addr
	startServe(t, bin, "--listen", addr, "--public-url", url, "--data-dir", data)

	t.Run("good deployment", func(t *testing.T) {
		good := []string{"doctor", "--public-url", url, "--data-dir", data}
		run(good...).Want(t, 0, []string{"ok    database    sqlite answers, schema version", "ok    idp ", "ok    public-url  " + url + " answers /healthz and /readyz",
			"ok    relay       the relay answers at " + url + "/derp"}, nil)
		var out struct{ Checks []check }
		if err := json.Unmarshal([]byte(run(append(good, "--json")...).Stdout), &out); err != nil || len(out.Checks) != 6 {
			t.Fatalf("doctor --json: %v %+v", err, out)
		}
		for _, c := range out.Checks {
			if c.Status != statusOK {
				t.Errorf("doctor --json on a good deployment: %+v", c)
			}
		}
	})
	t.Run("broken deployment", func(t *testing.T) {
		r := run("doctor", "--public-url", "http://"+freeAddr(t), "--data-dir", t.TempDir(),
			"--oidc-issuer", url+"/idp/", "--oidc-client-id", "moat")
		r.Want(t, cli.ExitNo, []string{"fail  database    no database at", "fail  idp         the issuer is " + url + "/idp/ but the provider calls itself " + url + "/idp — drop the trailing slash",
			"fail  public-url  cannot reach", "connection refused"}, nil)
		r = run("doctor", "--public-url", url, "--data-dir", data, "--oidc-issuer", url+"/idp", "--oidc-client-id", "moat", "--oidc-client-secret", "wrong")
		r.Want(t, cli.ExitNo, []string{"fail  idp ", `refused client "moat"`, "invalid_client", "ok    database"}, nil)
	})
	t.Run("proxy that does not pass the relay", func(t *testing.T) {
		target, _ := neturl.Parse(url)
		fwd := httputil.NewSingleHostReverseProxy(target)
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/derp") {
				http.NotFound(w, r)
				return
			}
			fwd.ServeHTTP(w, r)
		}))
		defer proxy.Close()
		run("doctor", "--public-url", proxy.URL, "--data-dir", data).Want(t, 0,
			[]string{"ok    public-url  " + proxy.URL + " answers", "warn  relay       " + proxy.URL + "/derp answered 404 Not Found, not the relay"}, nil)
	})
	t.Run("serve refuses a broken IdP at start", func(t *testing.T) {
		serve := []string{"serve", "--listen", "127.0.0.1:0", "--public-url", "http://127.0.0.1", "--data-dir", t.TempDir(), "--oidc-client-id", "moat"}
		run(append(serve, "--oidc-issuer", url+"/idp/")...).Want(t, cli.ExitFailure, nil,
			[]string{"the issuer is " + url + "/idp/ but the provider calls itself " + url + "/idp — drop the trailing slash from --oidc-issuer"})
		run(append(serve, "--oidc-issuer", url+"/idp", "--oidc-client-secret", "wrong")...).Want(t, cli.ExitFailure, nil,
			[]string{`refused client "moat" with the configured secret (invalid_client)`, "--oidc-client-secret"})
	})
}

// freeAddr is a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// The TLS check refuses a certificate for another name, and judges its
// expiry.
func TestDoctorTLS(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := coordinator.SelfSignedCert(dir, "https://moat.example.com"); err != nil {
		t.Fatal(err)
	}
	doc := func(public string) *doctor {
		s := &serveSettings{tlsMode: "self-signed"}
		s.store.dataDir = dir
		return &doctor{s: s, cfg: coordinator.Config{PublicURL: public}}
	}
	now := time.Now()
	if c := doc("https://moat.example.com").tls(now); c.Status != statusOK {
		t.Errorf("matching certificate: %+v", c)
	}
	if c := doc("https://other.example.com").tls(now); c.Status != statusFail || !strings.Contains(c.Message, "is not for other.example.com") {
		t.Errorf("certificate for another name: %+v", c)
	}
	if c := doc("https://moat.example.com").tls(now.AddDate(11, 0, 0)); c.Status != statusFail || !strings.Contains(c.Message, "expired on") {
		t.Errorf("expired certificate: %+v", c)
	}
	cert, _, _ := doc("").localCert()
	if c := doc("https://moat.example.com").tls(cert.NotAfter.Add(-24 * time.Hour)); c.Status != statusWarn || !strings.Contains(c.Message, "renew it soon") {
		t.Errorf("certificate about to expire: %+v", c)
	}
	plain := &doctor{s: &serveSettings{}, cfg: coordinator.Config{PublicURL: "http://moat.example.com"}}
	if c := plain.tls(now); c.Status != statusWarn || !strings.Contains(c.Message, "in clear") {
		t.Errorf("plain HTTP on a public name: %+v", c)
	}
}
