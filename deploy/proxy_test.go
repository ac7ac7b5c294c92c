package deploy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/testlog"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// proxy is a reverse proxy started in front of a coordinator.
type proxy struct {
	name string
	url  string // https://localhost:PORT
	ca   []byte // PEM of the root its certificate chains to
	// refused is the status the proxy answers for /metrics and the admin
	// API from outside the admin networks.
	refused int
	coord   *coordtest.Coord
	log     *testlog.Buffer
}

// TestBehindProxies runs the coordinator behind the shipped Caddy and
// nginx configurations, each with TLS, and signs a device in through them.
// The clients verify the proxies' certificates against the system roots
// (SSL_CERT_FILE), as a device does; Go reads those once per process, so
// both proxies start before the first TLS handshake.
func TestBehindProxies(t *testing.T) {
	var proxies []*proxy
	for _, start := range []func(*testing.T) (*proxy, error){startCaddy, startNginx} {
		p, err := start(t)
		if err != nil {
			if errors.Is(err, exec.ErrNotFound) {
				t.Logf("SKIP part: %v (scripts/deps.sh test installs it as root)", err)
				continue
			}
			t.Fatal(err)
		}
		proxies = append(proxies, p)
	}
	if len(proxies) == 0 {
		t.Skip("neither caddy nor nginx is installed (scripts/deps.sh test installs them as root)")
	}
	bundle := filepath.Join(t.TempDir(), "roots.pem")
	var roots []byte
	for _, p := range proxies {
		roots = append(roots, p.ca...)
	}
	if err := os.WriteFile(bundle, roots, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", bundle)
	for _, p := range proxies {
		t.Run(p.name, func(t *testing.T) { checkProxy(t, p) })
	}
}

func checkProxy(t *testing.T, p *proxy) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	get := func(path string, hdr ...string) int {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz through %s: %d", p.name, code)
	}
	// The coordinator answers 401 without a token; the proxy must not
	// even pass these on from outside the admin networks.
	for _, path := range []string{"/metrics", "/api/v1/admin/people", "/api/v1/admin"} {
		if code := get(path); code != p.refused {
			t.Errorf("%s through %s: %d, want the proxy's %d", path, p.name, code, p.refused)
		}
	}
	// The relay passes through: DERP's 426 comes from the coordinator.
	if code := get("/derp"); code != http.StatusUpgradeRequired {
		t.Errorf("/derp through %s: %d, want the relay's 426", p.name, code)
	}

	// A client cannot claim another address: the proxy replaces the
	// header, and the coordinator (trusting the proxy) logs the peer.
	before := len(p.log.String())
	get("/moat-proxy-probe", "X-Forwarded-For", "203.0.113.7")
	line := logLine(p.log, before, `"route":"unmatched"`)
	if line == "" {
		t.Fatal("the probe request was not logged")
	}
	if strings.Contains(line, "203.0.113.7") || !strings.Contains(line, `"client":"127.0.0.1"`) {
		t.Errorf("access log took a spoofed X-Forwarded-For: %s", line)
	}

	// A device signs in through the proxy and its netmap stream arrives.
	person := p.coord.AddPerson(t, "alice@example.com", false)
	c, err := control.New(control.Config{URL: p.url})
	if err != nil {
		t.Fatal(err)
	}
	priv, err := key.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	start, err := c.StartLogin(ctx, wire.LoginRequest{Key: priv.Public(), Hostname: "laptop", OS: "linux"})
	if err != nil {
		t.Fatalf("start sign-in through %s: %v", p.name, err)
	}
	if !strings.HasPrefix(start.AuthURL, p.url+"/") {
		t.Fatalf("sign-in URL %q is not on the public URL %s", start.AuthURL, p.url)
	}
	if err := p.coord.SignIn(start.AuthURL, person); err != nil {
		t.Fatalf("sign in through %s: %v", p.name, err)
	}
	res, err := c.WaitLogin(ctx, start.Poll)
	if err != nil {
		t.Fatalf("finish sign-in through %s: %v", p.name, err)
	}
	got := errors.New("got a netmap")
	err = c.WithCredential(res.Credential).Stream(ctx, 0, func(nm *wire.NetMap) error {
		if nm.Self.Addresses == nil {
			return fmt.Errorf("netmap without addresses: %+v", nm.Self)
		}
		return got
	})
	if !errors.Is(err, got) {
		t.Fatalf("netmap stream through %s: %v", p.name, err)
	}
}

// startCoord starts a coordinator whose public URL is publicURL, trusting
// a proxy on loopback, with its log captured.
func startCoord(t *testing.T, publicURL string) (*coordtest.Coord, *testlog.Buffer) {
	log := &testlog.Buffer{}
	c := coordtest.Start(t, func(cfg *coordinator.Config) {
		cfg.PublicURL = publicURL
		cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		cfg.Logger = slog.New(slog.NewJSONHandler(log, nil))
	})
	return c, log
}

func startCaddy(t *testing.T) (*proxy, error) {
	bin, err := exec.LookPath("caddy")
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	abs, err := filepath.Abs("caddy/Caddyfile")
	if err != nil {
		return nil, err
	}
	// The shipped file as it is, adapted first: it must parse.
	if out, err := exec.Command(bin, "adapt", "--config", abs, "--adapter", "caddyfile").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("caddy adapt deploy/caddy/Caddyfile: %v\n%s", err, out)
	}
	port, httpPort := freePort(t), freePort(t)
	p := &proxy{name: "caddy", url: fmt.Sprintf("https://localhost:%d", port), refused: http.StatusNotFound}
	p.coord, p.log = startCoord(t, p.url)
	// Test-only global options: its own ports and storage, certificates
	// from Caddy's internal CA; then the shipped site block.
	conf := fmt.Sprintf("{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n\thttp_port %d\n\thttps_port %d\n\tstorage file_system %s\n}\nimport %s\n",
		httpPort, port, filepath.Join(dir, "data"), abs)
	wrapper := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(wrapper, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", wrapper, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir,
		"MOAT_DOMAIN=localhost:"+fmt.Sprint(port), "MOAT_UPSTREAM="+strings.TrimPrefix(p.coord.URL, "http://"))
	if err := run(t, cmd, port); err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "data", "pki", "authorities", "local", "root.crt")
	if p.ca, err = waitFile(root); err != nil {
		return nil, fmt.Errorf("caddy's root certificate: %w", err)
	}
	return p, nil
}

func startNginx(t *testing.T) (*proxy, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if bin, err = exec.LookPath("/usr/sbin/nginx"); err != nil {
			return nil, err
		}
	}
	dir := t.TempDir()
	shipped, err := os.ReadFile("nginx/moat.conf")
	if err != nil {
		return nil, err
	}
	port := freePort(t)
	p := &proxy{name: "nginx", url: fmt.Sprintf("https://localhost:%d", port), refused: http.StatusForbidden}
	p.coord, p.log = startCoord(t, p.url)
	caPEM, certFile, keyFile, err := issueCert(dir)
	if err != nil {
		return nil, err
	}
	p.ca = caPEM
	// The shipped server block with this test's addresses and files.
	conf := string(shipped)
	for _, r := range [][2]string{
		{"server 127.0.0.1:8080;", "server " + strings.TrimPrefix(p.coord.URL, "http://") + ";"},
		{"listen 443 ssl http2;", fmt.Sprintf("listen 127.0.0.1:%d ssl http2;", port)},
		{"listen [::]:443 ssl http2;", ""},
		{"server_name moat.example.com;", "server_name localhost;"},
		{"/etc/ssl/moat/fullchain.pem", certFile},
		{"/etc/ssl/moat/privkey.pem", keyFile},
	} {
		if !strings.Contains(conf, r[0]) {
			return nil, fmt.Errorf("deploy/nginx/moat.conf no longer has %q", r[0])
		}
		conf = strings.Replace(conf, r[0], r[1], 1)
	}
	if err := os.WriteFile(filepath.Join(dir, "moat.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	main := fmt.Sprintf(`daemon off;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	include %[1]s/moat.conf;
}
`, dir)
	wrapper := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(wrapper, []byte(main), 0o600); err != nil {
		return nil, err
	}
	if out, err := exec.Command(bin, "-t", "-p", dir, "-c", wrapper).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nginx -t with deploy/nginx/moat.conf: %v\n%s", err, out)
	}
	return p, run(t, exec.Command(bin, "-p", dir, "-c", wrapper), port)
}

// run starts cmd, stops it when the test ends and waits until port
// accepts connections.
func run(t *testing.T, cmd *exec.Cmd, port int) error {
	var out testlog.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so that nginx's workers go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("%s exited: %s", cmd.Path, out.String())
		default:
		}
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s did not listen on %d: %s", cmd.Path, port, out.String())
}

func waitFile(path string) ([]byte, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil && len(b) > 0 {
			return b, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s never appeared: %v", path, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// issueCert makes a root and a certificate for localhost under it, and
// writes the certificate and key for nginx.
func issueCert(dir string) (caPEM []byte, certFile, keyFile string, err error) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "moat test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, "", "", err
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, "", "", err
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return nil, "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, "", "", err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile, nil
}

// logLine is the first line of log, after its first from bytes, that
// contains sub, or "".
func logLine(log *testlog.Buffer, from int, sub string) string {
	for _, l := range strings.Split(log.String()[from:], "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
