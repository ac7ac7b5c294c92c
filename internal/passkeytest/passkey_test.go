package passkeytest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/e2e"
	"github.com/moatmesh/moat/internal/npmtest"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

const (
	patEmail = "pat@example.com" // passkey at the IdP
	tomEmail = "tom@example.com" // app at the IdP, passkey at the step-up
	timEmail = "tim@example.com" // apps only
	password = "correct horse battery staple"
)

// policy lets the three use llama only after a phishing-resistant MFA.
const policy = `{
  "groups": { "group:staff": ["pat@example.com", "tom@example.com", "tim@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [
    { "src": ["group:staff"], "models": ["llama"], "mfa": { "within": "12h", "phishingResistant": true } },
  ],
}`

// login is a device login the script finishes in the browser.
type login struct {
	dir   client.Dir
	start *wire.LoginStart
}

func TestPasskeys(t *testing.T) {
	chromium := npmtest.Need(t, "chromium", "chromium")
	nodeBin := npmtest.Install(t, "js")
	sys := e2e.Start(t, func(cfg *coordinator.Config) {
		cfg.PublicURL = strings.Replace(cfg.PublicURL, "127.0.0.1", "localhost", 1)
		cfg.OIDC.MFAMethods = []string{"hwk", "swk"} // an IdP sign-in with an app code is stepped up
	})
	c := sys.Coord
	c.SavePolicy(t, policy)
	public := strings.Replace(c.URL, "127.0.0.1", "localhost", 1)
	patSetup, err := idp.AddUser(context.Background(), c.Store(), patEmail, "Pat", false, nil, public, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tom, tim := c.AddPerson(t, tomEmail, false), c.AddPerson(t, timEmail, false)
	logins := map[string]*login{}
	links := map[string]string{}
	for _, name := range []string{"pat1", "pat2", "pat3", "tom1", "tom2", "tim1"} {
		logins[name] = startLogin(t, c, name)
		links[name] = logins[name].start.AuthURL
	}
	linksJSON, _ := json.Marshal(links)
	clock := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.Clock.Advance(mfa.Period)
		io.WriteString(w, strconv.FormatInt(c.Clock.Now().Unix(), 10))
	}))
	t.Cleanup(clock.Close)

	artifacts, _ := filepath.Abs(filepath.Join("..", "..", "artifacts", "passkeys"))
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"MOAT_URL=" + public, "MOAT_CHROMIUM=" + chromium, "MOAT_PROFILES=" + t.TempDir(), "MOAT_ARTIFACTS=" + artifacts,
		"MOAT_NOW=" + strconv.FormatInt(c.Clock.Now().Unix(), 10), "CLOCK_URL=" + clock.URL,
		"PASSWORD=" + password, "LOGINS=" + string(linksJSON), "PAT_SETUP=" + patSetup, "PAT_EMAIL=" + patEmail,
		"TOM_EMAIL=" + tomEmail, "TOM_TOTP=" + tom.TOTP, "TIM_EMAIL=" + timEmail, "TIM_TOTP=" + tim.TOTP,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	t.Log(npmtest.Run(t, ctx, nodeBin, "js", env, "passkey.spec.mjs"))

	for name, l := range logins {
		if name == "pat3" { // refused: never finished
			continue
		}
		finishLogin(t, ctx, c, l)
		want := map[byte]string{'p': "hwk", 't': "hwk"}[name[0]]
		if name == "tim1" {
			want = "otp"
		}
		d := device(t, c, name)
		if d.MFAMethod != want {
			t.Errorf("device %s recorded MFA method %q, want %q", name, d.MFAMethod, want)
		}
	}
	checkUser(t, c, tomEmail, store.MFAViaPasskey)
	checkUser(t, c, timEmail, store.MFAViaTOTP)
	checkGuard(t, ctx, sys, logins["pat1"].dir, logins["tim1"].dir)
}

// startLogin starts the device login name, as `moat login` does.
func startLogin(t *testing.T, c *coordtest.Coord, name string) *login {
	dir := client.Dir(filepath.Join(t.TempDir(), name))
	priv, err := dir.DeviceKey(true)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := control.New(control.Config{URL: c.URL})
	start, err := cl.StartLogin(context.Background(), wire.LoginRequest{Key: priv.Public(), Hostname: name, OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(start.AuthURL, "http://localhost:") {
		t.Fatalf("login link %s is not on localhost", start.AuthURL)
	}
	return &login{dir: dir, start: start}
}

// finishLogin collects the outcome of l and saves it in its directory.
func finishLogin(t *testing.T, ctx context.Context, c *coordtest.Coord, l *login) {
	cl, _ := control.New(control.Config{URL: c.URL})
	res, err := cl.WaitLogin(ctx, l.start.Poll)
	if err != nil {
		t.Fatalf("login %s: %v", l.dir, err)
	}
	err = l.dir.SaveLogin(&client.Login{Coordinator: c.URL, Credential: res.Credential, DeviceID: res.DeviceID,
		Addresses: res.Addresses, Expiry: res.Expiry, SignedIn: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
}

func device(t *testing.T, c *coordtest.Coord, hostname string) *store.Device {
	ds, err := c.Store().Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.Hostname == hostname {
			return d
		}
	}
	t.Fatalf("no device %s", hostname)
	return nil
}

func checkUser(t *testing.T, c *coordtest.Coord, email, via string) {
	us, err := c.Store().Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.Email == email && u.MFAVia != via {
			t.Errorf("%s's last MFA was via %q, want %q", email, u.MFAVia, via)
		}
	}
}

// checkGuard: the node admits the device signed in with a passkey and
// refuses the one signed in with an app, saying what to do.
func checkGuard(t *testing.T, ctx context.Context, sys *e2e.System, passkeyDir, appDir client.Dir) {
	n := sys.AddNode(t, "gpu-1", "llama")
	for _, tc := range []struct {
		dir    client.Dir
		status int
		says   string
	}{
		{passkeyDir, http.StatusOK, "stand-in"},
		{appDir, http.StatusUnauthorized, "needs a sign-in with a passkey or security key, and tim@example.com last signed in on this device with a one-time code"},
	} {
		cl := e2e.StartClient(t, client.Config{StateDir: string(tc.dir)})
		if e2e.WaitNetMap(cl, 15*time.Second, func(nm *wire.NetMap) bool {
			for _, p := range nm.Peers {
				if p.Identity.DeviceID == n.Node().DeviceID() && len(p.Models) > 0 {
					return true
				}
			}
			return false
		}) == nil {
			t.Fatalf("%s never saw the node", tc.dir)
		}
		status, body := chat(t, ctx, cl)
		if status != tc.status || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d %s; want %d saying %q", tc.dir, status, body, tc.status, tc.says)
		}
	}
}

// chat asks the client's local endpoint for a completion, retrying while
// the path to the node comes up.
func chat(t *testing.T, ctx context.Context, cl *client.Client) (int, string) {
	body := `{"model":"llama","messages":[{"role":"user","content":"hello"}]}`
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, "POST", cl.Endpoint()+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 || time.Now().After(deadline) {
				return resp.StatusCode, string(b)
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("chat: %v", err)
		}
	}
}
