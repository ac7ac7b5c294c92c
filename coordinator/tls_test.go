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
