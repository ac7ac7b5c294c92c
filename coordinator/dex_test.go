package coordinator

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/browsertest"
)

// dexBinary is the Dex binary scripts/dex.sh built: $MOAT_DEX, or the
// cached build. The test skips, saying why, when there is none.
func dexBinary(t *testing.T) string {
	t.Helper()
	bin, set := os.LookupEnv("MOAT_DEX")
	if !set {
		out, err := exec.Command("../scripts/dex.sh", "--if-built").Output()
		if err != nil {
			t.Skip("Dex is not built: `make test-dex` builds it once (scripts/dex.sh) and runs this test")
		}
		bin = strings.TrimSpace(string(out))
	}
	if fi, err := os.Stat(bin); err != nil || fi.IsDir() {
		t.Skipf("Dex could not be built (MOAT_DEX=%q); see scripts/dex.sh's output", bin)
	}
	return bin
}

// startDex runs Dex with a static password connector (one person, email
// and password) and moat as a static client redirecting to redirect. It
// returns the issuer once Dex answers discovery, and a function that
// stops Dex (an IdP outage).
func startDex(t *testing.T, bin, redirect, email, password string) (string, func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost) // Dex refuses a cost under 10
	issuer := "http://" + addr + "/dex"
	cfg := fmt.Sprintf(`issuer: %s
storage: {type: memory}
web: {http: %q}
logger: {level: warn}
oauth2: {skipApprovalScreen: true}
enablePasswordDB: true
staticClients:
- id: moat
  name: moat
  secret: dex-test-client-secret
  redirectURIs: [%q]
staticPasswords:
- email: %q
  hash: %q
  username: alice
  userID: 08a8684b-db88-4b73-90a9-3cd1661f5466
`, issuer, addr, redirect, email, hash)
	path := filepath.Join(t.TempDir(), "dex.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", path)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(stopped) }()
	stop := func() { cancel(); <-stopped }
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("Dex's log:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(issuer + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return issuer, stop
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Dex did not answer discovery within 30s: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond) // polling a process we do not own
	}
}

// A person signs in through a real Dex (its own login form, posted as a
// browser would), with the configurable scopes and claims; Dex sends no
// amr, so the coordinator's own TOTP step-up is demanded and recorded.
// With offline_access the person is then re-checked at Dex (its refresh
// grant), and Dex being down disables nobody.
func TestDexSignInWithStepUp(t *testing.T) {
	bin := dexBinary(t)
	clk := newClock()
	tc := prepareCoord(t, "", t.TempDir(), clk)
	issuer, stopDex := startDex(t, bin, tc.URL+"/oidc/callback", "alice@example.com", "dex-password-1")
	if err := tc.start(t, func(c *Config) {
		c.OIDC = OIDCConfig{Issuer: issuer, ClientID: "moat", ClientSecret: "dex-test-client-secret",
			Scopes: []string{"openid", "email", "profile", "offline_access"}, EmailClaim: "email", RequireVerifiedEmail: true}
		c.IdPRecheck = time.Hour
	}); err != nil {
		t.Fatal(err)
	}

	c, start := tc.startLoginOf(t, "alice-laptop")
	b := browsertest.New(nil)
	page, err := b.Get(start.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	if page, err = page.Submit(nil); err != nil || !strings.HasPrefix(page.URL.String(), issuer) || !page.Contains("password") {
		t.Fatalf("confirming the device did not lead to Dex's login form: %v\n%s", err, page.Body)
	}
	if p, _ := page.Submit(map[string]string{"login": "alice@example.com", "password": "wrong"}); !strings.HasPrefix(p.URL.String(), issuer) || !p.Contains("Invalid") {
		t.Fatalf("a wrong password: %s, want Dex's form again saying it is invalid:\n%s", p.URL, p.Body)
	}
	// The form again, fresh (Dex answers a wrong password with it).
	page, _ = b.Get(page.URL.String())
	page, err = page.Submit(map[string]string{"login": "alice@example.com", "password": "dex-password-1"})
	secret := page.Text("code")
	if err != nil || !page.Contains("authenticator app") || secret == "" {
		t.Fatalf("want the coordinator's TOTP enrollment after Dex (no amr): %v\n%s", err, page.Body)
	}
	code, _ := mfa.Code(secret, clk.Now())
	if page, _ = page.Submit(map[string]string{"code": code}); !page.Contains("is now connected as alice@example.com") {
		t.Fatalf("step-up code refused:\n%s", page.Body)
	}
	res, err := c.WaitLogin(context.Background(), start.Poll)
	if err != nil {
		t.Fatal(err)
	}
	users, _ := tc.store.Users(context.Background())
	if len(users) != 1 || users[0].Issuer != issuer || users[0].Email != "alice@example.com" || users[0].MFAVia != store.MFAViaTOTP {
		t.Fatalf("users after the Dex sign-in: %+v; want alice from %s with MFA via the coordinator's TOTP", users[0], issuer)
	}
	if d, _ := tc.store.Device(context.Background(), string(res.DeviceID)); d == nil || d.LastMFA.IsZero() {
		t.Fatalf("device %+v has no MFA time", d)
	}

	dexRecheck(t, tc, users[0].ID, stopDex)
}

// dexRecheck re-checks the person at Dex, then with Dex stopped.
func dexRecheck(t *testing.T, tc *testCoord, userID string, stopDex func()) {
	t.Helper()
	ctx := t.Context()
	g, err := tc.store.IdPGrant(ctx, userID)
	if err != nil {
		t.Fatalf("no refresh token kept from Dex: %v", err)
	}
	tc.recheckRound(ctx, tc.clock.Now())
	if g2, err := tc.store.IdPGrant(ctx, userID); err != nil || g2.Result != store.IdPCheckOK || bytes.Equal(g2.Refresh, g.Refresh) {
		t.Fatalf("re-check at Dex: %+v, %v; want ok with the rotated token", g2, err)
	}
	stopDex()
	tc.recheckRound(ctx, tc.clock.Now())
	u, err := tc.store.User(ctx, userID)
	if err != nil || u.Disabled {
		t.Fatalf("with Dex down the person was disabled (%v)", err)
	}
	if g3, _ := tc.store.IdPGrant(ctx, userID); g3 == nil || g3.Result != store.IdPCheckError {
		t.Fatalf("re-check with Dex down recorded %+v, want error", g3)
	}
}
