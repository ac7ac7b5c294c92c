package compose_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/internal/e2e"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// TestCompose runs compose.yaml for real: a dockerd of its own, the moat
// images `make images` builds (scripts/images.sh, checked as OCI
// archives), images of this host's PostgreSQL and Caddy in place of the
// official ones, and the stand-in model in place of Ollama. The
// coordinator comes up on PostgreSQL behind Caddy with TLS, the node
// joins through Caddy on the userspace stack, a person set up with the
// CLI signs a device in through the embedded provider (password and
// TOTP), and the device gets a streamed answer from the node's model.
// Then `docker-compose down -v`, dockerd stopped and its data removed.
func TestCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("builds images and runs a dockerd; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("runs its own dockerd: root only (make test as root runs it)")
	}
	for _, c := range []string{"dockerd", dockerCLI, "docker-compose", "skopeo", "caddy", "ldd"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s is not installed (scripts/deps.sh test installs it as root)", c)
		}
	}
	dir, err := os.MkdirTemp("", "moat-compose-") // short: dockerd's socket path is limited
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	phase := func(done string) { t.Logf("%s at %v", done, time.Since(start).Round(100*time.Millisecond)) }
	e := startEngine(t, dir)
	phase("dockerd up")
	const version = "v0.0.0-compose-test"
	buildMoatImages(t, e, dir, version)
	phase("make images")
	pgImage, caddyImage, modelImage := buildTestImages(t, e, dir)
	phase("test images")

	gw := freeSubnet(t)
	public := "https://" + gw
	p := newProject(t, e, dir, gw, map[string]string{
		"MOAT_DOMAIN": gw, "MOAT_BIND_ADDR": gw,
		"MOAT_SEAL_KEY": randomHex(), "MOAT_DB_PASSWORD": randomHex(),
		"MOAT_IMAGE_PREFIX": "moat-test", "MOAT_VERSION": version,
		"POSTGRES_IMAGE": pgImage, "CADDY_IMAGE": caddyImage, "MODEL_IMAGE": modelImage,
		"MOAT_MODEL": "llama=http://127.0.0.1:11434",
	})
	p.compose("up", "-d", "postgres", "coordinator", "caddy")

	// Caddy's own CA signs the coordinator's certificate: devices, the
	// node and this test trust it as a device trusts a public CA.
	root := filepath.Join(dir, "caddy-data", "caddy", "pki", "authorities", "local", "root.crt")
	if err := waitFor(60*time.Second, func() error { _, err := os.Stat(root); return err }); err != nil {
		t.Fatalf("Caddy made no CA: %v\n%s", err, p.logs())
	}
	ca, _ := os.ReadFile(root)
	writeFile(t, filepath.Join(dir, "ca", "root.crt"), string(ca), 0o644)
	t.Setenv("SSL_CERT_FILE", root)
	if err := waitFor(90*time.Second, func() error { return get(public + "/readyz") }); err != nil {
		t.Fatalf("the coordinator is not ready through Caddy: %v\n%s", err, p.logs())
	}
	phase("coordinator ready through Caddy")
	// The coordinator's port is not published: Caddy is the way in.
	// The admin API answers the test because, through docker's userland
	// proxy, Caddy sees it coming from the network's gateway (private).
	token := regexp.MustCompile(`moat_at_\w+`).FindString(p.exec("moat-coordinator", "tokens", "create", "compose-test"))
	if token == "" {
		t.Fatal("tokens create printed no token")
	}
	adm := admin{url: public + "/api/v1/admin", token: token}
	adm.call(t, "PUT", "/policy", map[string]string{"message": "compose test", "text": `{
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["alice@example.com"], "models": ["llama"] } ],
}`})
	var key struct{ Key string }
	json.Unmarshal(adm.call(t, "POST", "/enroll-keys", map[string]any{"tags": []string{"tag:gpu"}}), &key)
	if key.Key == "" {
		t.Fatal("no enrollment key")
	}
	p.env["MOAT_ENROLL_KEY"] = key.Key
	p.compose("up", "-d", "model", "node")

	alice := setUpPerson(t, p.exec("moat-coordinator", "users", "add", "alice@example.com"))
	cl := signInDevice(t, public, filepath.Join(dir, "device"), alice)
	if e2e.WaitNetMap(cl, 90*time.Second, func(nm *wire.NetMap) bool {
		return slices.ContainsFunc(nm.Peers, func(p wire.Peer) bool { return slices.Contains(p.Models, "llama") })
	}) == nil {
		t.Fatalf("the device was never offered llama by the composed node\n%s", p.logs())
	}
	phase("device offered llama")
	askStreamed(t, cl.Endpoint(), p)
	phase("streamed answer")
	for _, service := range []string{"coordinator", "node"} {
		if uids := p.uids(service); len(uids) == 0 || slices.ContainsFunc(uids, func(u string) bool { return u != "65532" }) {
			t.Errorf("%s runs as uids %v; want 65532 (moat) only", service, uids)
		}
	}
}

// buildMoatImages runs scripts/images.sh (make images) against the engine
// and checks the OCI archives it writes.
func buildMoatImages(t *testing.T, e *engine, dir, version string) {
	t.Helper()
	out := filepath.Join(dir, "artifacts")
	cmd := exec.Command("../../scripts/images.sh", out, version)
	cmd.Env = append(e.env(), "IMAGE_PREFIX=moat-test")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("images.sh: %v\n%s", err, b)
	}
	for _, name := range []string{"moat-coordinator", "moat-node"} {
		cfg, err := ociConfig(filepath.Join(out, name+"-"+version+".oci.tar"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		l := cfg.Config.Labels
		if l["org.opencontainers.image.version"] != version || l["org.opencontainers.image.title"] != name ||
			l["org.opencontainers.image.source"] != "https://github.com/moatmesh/moat" ||
			!regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(l["org.opencontainers.image.revision"]) {
			t.Errorf("%s: labels %v", name, l)
		}
		if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/" + name}) {
			t.Errorf("%s: runs %v as %q; want its binary as 65532:65532", name, cfg.Config.Entrypoint, cfg.Config.User)
		}
	}
}

// setUpPerson follows the setup link `users add` printed, as the person
// would: password and the coordinator's TOTP.
func setUpPerson(t *testing.T, printed string) *person {
	t.Helper()
	link := regexp.MustCompile(`https://\S+`).FindString(printed)
	page, err := browsertest.New(nil).Get(link)
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("setup link %q: %v\n%s", link, err, printed)
	}
	p := &person{email: "alice@example.com", password: "correct horse battery staple", totp: page.Text("code")}
	page, err = page.Submit(map[string]string{"password": p.password, "confirm": p.password, "code": p.code(t)})
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("setup: %v\n%s", err, page.Body)
	}
	return p
}

// person is a user of the embedded provider with their secrets.
type person struct {
	email, password, totp string
	last                  int64 // the TOTP step last used: codes work once
}

// code is a TOTP code of a step not used before: the current one, or the
// next (accepted for clock drift) when the current one was used.
func (p *person) code(t *testing.T) string {
	at := time.Now()
	if mfa.Step(at) <= p.last {
		at = at.Add(mfa.Period)
	}
	p.last = mfa.Step(at)
	c, err := mfa.Code(p.totp, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signInDevice signs a device in as p through the browser flow, as `moat
// login` does, and starts its client with its local endpoint.
func signInDevice(t *testing.T, public, dir string, p *person) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d := client.Dir(dir)
	priv, err := d.DeviceKey(true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := control.New(control.Config{URL: public})
	if err != nil {
		t.Fatal(err)
	}
	start, err := c.StartLogin(ctx, wire.LoginRequest{Key: priv.Public(), Hostname: "laptop", OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	page, err := browsertest.New(nil).Get(start.AuthURL)
	for i, fields := range []map[string]string{nil, {"email": p.email, "password": p.password}, {"code": p.code(t)}} {
		if err != nil {
			t.Fatalf("sign-in step %d: %v", i, err)
		}
		page, err = page.Submit(fields)
	}
	if err != nil || !page.Contains("is now connected as") {
		t.Fatalf("sign-in did not finish: %v\n%s", err, page.Body)
	}
	res, err := c.WaitLogin(ctx, start.Poll)
	if err != nil {
		t.Fatal(err)
	}
	err = d.SaveLogin(&client.Login{Coordinator: public, Credential: res.Credential, DeviceID: res.DeviceID,
		Addresses: res.Addresses, Expiry: res.Expiry, SignedIn: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(client.Config{StateDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); cl.Run(context.Background()) }()
	t.Cleanup(func() { cl.Close(); <-done })
	return cl
}

// askStreamed asks the model through the device's endpoint and checks
// the answer arrives as a stream: the stand-in's words one by one, spread
// over time (10 ms apart at the model), not all at once.
func askStreamed(t *testing.T, endpoint string, p *project) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", endpoint+"/v1/chat/completions",
		strings.NewReader(`{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("answer: %d %s\n%s", resp.StatusCode, b, p.logs())
	}
	var text strings.Builder
	var chunks int
	var first, last time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if first.IsZero() {
			first = time.Now()
		}
		last = time.Now()
		chunks++
		text.WriteString(line)
	}
	if !strings.Contains(text.String(), "stand-in") || !strings.HasSuffix(text.String(), "[DONE]") {
		t.Fatalf("the answer is not the stand-in's, or did not end: %s", text.String())
	}
	if chunks < 10 || last.Sub(first) < 100*time.Millisecond {
		t.Errorf("the answer came in %d chunks over %v: buffered on the way, not streamed", chunks, last.Sub(first))
	}
}

// admin calls the coordinator's admin API.
type admin struct{ url, token string }

func (a admin) call(t *testing.T, method, path string, body any) []byte {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, a.url+path, strings.NewReader(string(b)))
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, out)
	}
	return out
}

func get(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// randomHex is 32 random bytes in hex: a seal key, or a password that
// needs no escaping in a URL.
func randomHex() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}
