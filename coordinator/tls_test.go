package coordinator

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/moatmesh/moat/mesh/control"
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
