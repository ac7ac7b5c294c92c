package coordinator

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

func TestSelfSignedCertIsKeptAndPinnable(t *testing.T) {
	dir := t.TempDir()
	cert, fp, err := SelfSignedCert(dir, "https://127.0.0.1:8443")
	if err != nil {
		t.Fatal(err)
	}
	if _, fp2, _ := SelfSignedCert(dir, "https://127.0.0.1:8443"); fp2 != fp {
		t.Fatalf("fingerprint changed across restarts: %s vs %s", fp, fp2)
	}
	if st, _ := os.Stat(filepath.Join(dir, "tls-key.pem")); st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	ts.StartTLS()
	defer ts.Close()
	c, err := control.New(control.Config{URL: ts.URL, Fingerprint: fp, Credential: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(t.Context()); err != nil {
		t.Fatalf("client pinning the printed fingerprint: %v", err)
	}
}

// Over https the sign-in cookies carry the "__Host-" prefix, so no other
// host under the same domain can plant them, and a sign-in works with it.
func TestSignInOverHTTPS(t *testing.T) {
	tc := startCoordTLS(t, t.TempDir(), newClock())
	alice := tc.addPerson(t, "alice@example.com", false)
	priv, _ := key.NewPrivate()
	c := tc.client(t, "")
	start, err := c.StartLogin(t.Context(), wire.LoginRequest{Key: priv.Public(), Hostname: "laptop", OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	b := browsertest.New(tc.transport)
	if page := tc.browse(t, b, start.AuthURL, alice); !page.Contains("is now connected as") {
		t.Fatalf("sign-in over https did not finish (status %d):\n%s", page.Status, page.Body)
	}
	if _, err := c.WaitLogin(t.Context(), start.Poll); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(tc.URL + "/login/")
	names := map[string]bool{}
	for _, ck := range b.Client.Jar.Cookies(u) {
		names[ck.Name] = true
	}
	for _, want := range []string{"__Host-moat_login", "__Host-moat_csrf"} {
		if !names[want] {
			t.Errorf("no %s cookie over https; the browser has %v", want, names)
		}
	}
	if names["moat_login"] || names["moat_csrf"] {
		t.Errorf("unprefixed cookies over https: %v", names)
	}
}

// TestSelfSignedTLSInDatabase: the certificate serve uses lives in the
// database, the one an earlier version kept in the data dir is imported,
// its key is written nowhere, and its public half is in tls-cert.pem.
func TestSelfSignedTLSInDatabase(t *testing.T) {
	dir := t.TempDir()
	_, legacy, err := SelfSignedCert(dir, "https://127.0.0.1:8443") // as an earlier version left it
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{PublicURL: "https://127.0.0.1:8443", DataDir: dir}
	if _, fp, err := SelfSignedTLS(t.Context(), cfg); err != nil || fp != legacy {
		t.Fatalf("imported certificate %s, %v; want the data dir's %s", fp, err, legacy)
	}

	fresh := t.TempDir()
	cfg.DataDir = fresh
	_, fp, err := SelfSignedTLS(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, again, err := SelfSignedTLS(t.Context(), cfg); err != nil || again != fp {
		t.Fatalf("second start: %s, %v; want %s", again, err, fp)
	}
	if _, err := os.Stat(filepath.Join(fresh, "tls-key.pem")); !os.IsNotExist(err) {
		t.Fatalf("the key was written to the data dir: %v", err)
	}
	pub, err := os.ReadFile(filepath.Join(fresh, "tls-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(pub, pub); err == nil {
		t.Fatal("tls-cert.pem holds the private key")
	}
}
