package compose_test

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// project is compose.yaml brought up on the test's engine, with an
// override file for what only the test needs: Caddy's certificates from
// its own CA (the shipped Caddyfile imported as it is), the node trusting
// that CA, and a network whose gateway address is the public URL's host.
type project struct {
	t        *testing.T
	e        *engine
	env      map[string]string
	override string
}

// caddyTest is the test's Caddyfile: local certificates, the site's
// certificate also for clients that send no server name (Go sends none
// for an IP address, the test's public host), then the shipped site
// block.
const caddyTest = `{
	local_certs
	skip_install_trust
	default_sni {$MOAT_DOMAIN}
}
import /etc/caddy/moat.Caddyfile
`

func newProject(t *testing.T, e *engine, dir, gw string, env map[string]string) *project {
	t.Helper()
	shipped, err := filepath.Abs("../caddy/Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "Caddyfile"), caddyTest, 0o644)
	prefix := strings.TrimSuffix(gw, ".1")
	override := fmt.Sprintf(`version: "2.4"
services:
  caddy:
    volumes:
      - %[1]s/Caddyfile:/etc/caddy/Caddyfile:ro
      - %[2]s:/etc/caddy/moat.Caddyfile:ro
      - %[1]s/caddy-data:/data
  node:
    environment:
      SSL_CERT_FILE: /etc/moat-test/root.crt
    volumes:
      - %[1]s/ca:/etc/moat-test:ro
networks:
  default:
    ipam:
      config:
        - subnet: %[3]s.0/24
          gateway: %[4]s
`, dir, shipped, prefix, gw)
	p := &project{t: t, e: e, env: env, override: filepath.Join(dir, "override.yaml")}
	writeFile(t, p.override, override, 0o644)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("compose logs:\n%s", p.logs())
		}
		if out, err := p.run("down", "-v", "--timeout", "10"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
	})
	return p
}

// run runs docker-compose with args and returns its standard output.
func (p *project) run(args ...string) (string, error) {
	cmd := exec.Command("docker-compose", append([]string{"-p", p.e.name(), "-f", "compose.yaml", "-f", p.override}, args...)...)
	cmd.Env = p.e.env()
	for k, v := range p.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), fmt.Errorf("docker-compose %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// compose runs docker-compose with args, failing the test on an error.
func (p *project) compose(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("%v\n%s\n%s", err, out, p.logs())
	}
	return out
}

// exec runs a command in the coordinator's container.
func (p *project) exec(args ...string) string {
	p.t.Helper()
	return p.compose(append([]string{"exec", "-T", "coordinator"}, args...)...)
}

// uids lists the user IDs a service's processes run as.
func (p *project) uids(service string) []string {
	p.t.Helper()
	id := strings.TrimSpace(p.compose("ps", "-q", service))
	out, err := p.e.docker("top", id, "-o", "pid,uid") // docker top needs the PID
	if err != nil {
		p.t.Fatal(err)
	}
	var uids []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] { // after the header
		if f := strings.Fields(line); len(f) == 2 {
			uids = append(uids, f[1])
		}
	}
	return uids
}

// logs is the end of every service's log, for failure messages.
func (p *project) logs() string {
	out, _ := p.run("logs", "--no-color", "--tail", "60")
	return out
}

// freeSubnet picks a /24 no interface or route of this host uses and
// returns its first address, the Compose network's gateway.
func freeSubnet(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", "ip -4 addr; ip -4 route show table all").CombinedOutput()
	if err != nil {
		t.Fatalf("ip: %v\n%s", err, out)
	}
	for n := 100 + time.Now().Nanosecond()%100; n < 250; n++ {
		prefix := fmt.Sprintf("10.213.%d.", n)
		if !strings.Contains(string(out), prefix) {
			return prefix + "1"
		}
	}
	t.Fatal("no free 10.213.N.0/24")
	return ""
}

// imageConfig is the part of an OCI image configuration the test checks.
type imageConfig struct {
	Config struct {
		User       string
		Entrypoint []string
		Labels     map[string]string
	} `json:"config"`
}

// ociConfig reads an OCI archive (an image layout in a tar) and returns
// the configuration of the image its index names.
func ociConfig(path string) (*imageConfig, error) {
	blobs := map[string][]byte{}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Name == "index.json" || h.Name == "oci-layout" || strings.HasPrefix(h.Name, "blobs/") && h.Size < 1<<20 {
			if blobs[h.Name], err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
	}
	if !strings.Contains(string(blobs["oci-layout"]), `"imageLayoutVersion"`) {
		return nil, errors.New("not an OCI image layout (no oci-layout)")
	}
	var index, manifest struct {
		Manifests []struct{ Digest string }
		Config    struct{ Digest string }
	}
	if err := json.Unmarshal(blobs["index.json"], &index); err != nil || len(index.Manifests) != 1 {
		return nil, fmt.Errorf("index.json: %v, %d manifests", err, len(index.Manifests))
	}
	blob := func(digest string) []byte { return blobs["blobs/"+strings.Replace(digest, ":", "/", 1)] }
	if err := json.Unmarshal(blob(index.Manifests[0].Digest), &manifest); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	cfg := new(imageConfig)
	if err := json.Unmarshal(blob(manifest.Config.Digest), cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}
