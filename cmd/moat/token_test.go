package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/client"
)

// checkLocalToken checks that `moat token` prints the token in the state
// directory, that `moat status` tells where the API key comes from, and,
// as root with setpriv and curl at hand, that another user of the machine
// is refused by `moat up`'s endpoint without the token and served with it.
func checkLocalToken(t *testing.T, dir, endpoint string) {
	t.Helper()
	code, out, _ := run(t, dir, "token")
	tok, err := client.Dir(dir).Token(false)
	if code != 0 || err != nil || strings.TrimSpace(out) != tok || !strings.HasPrefix(tok, "moat_lt_") {
		t.Fatalf("moat token: exit %d, printed %q; the file holds %q (%v)", code, out, tok, err)
	}
	if fi, err := os.Stat(client.Dir(dir).Path(client.TokenFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v, want mode 0600", fi, err)
	}
	if _, out, _ := run(t, dir, "status"); !strings.Contains(out, "API key:       the output of `moat token`") {
		t.Fatalf("moat status does not say where the API key comes from:\n%s", out)
	}
	if os.Geteuid() != 0 {
		return
	}
	if _, err := exec.LookPath("setpriv"); err != nil {
		return
	}
	if _, err := exec.LookPath("curl"); err != nil {
		return
	}
	for _, c := range []struct {
		header, want string
	}{
		{"", "401"},
		{"Authorization: Bearer moat_lt_guessed", "401"},
		{"Authorization: Bearer " + tok, "200"},
	} {
		args := []string{"--reuid=65534", "--regid=65534", "--clear-groups", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"}
		if c.header != "" {
			args = append(args, "-H", c.header)
		}
		got, err := exec.Command("setpriv", append(args, endpoint+"/v1/models")...).Output()
		if err != nil || string(got) != c.want {
			t.Errorf("curl as nobody with %q: %s %v, want %s", c.header, got, err, c.want)
		}
	}
}
