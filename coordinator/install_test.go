package coordinator

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmesh/moat/deploy"
)

// selfSigned makes a self-signed certificate as serve --tls=self-signed does.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	cert, _, err := SelfSignedCert(t.TempDir(), "https://198.18.0.1:8443")
	if err != nil {
		t.Fatal(err)
	}
	return cert.Certificate[0]
}

// writeRelease makes a release dir with two fake builds and no sums.
func writeRelease(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{nodeAMD, nodeARM} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("build "+name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestInstallCommandCarriesReleaseKeyAndPins(t *testing.T) {
	der := selfSigned(t)
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.SelfSignedCert, c.ReleaseKey = der, testKey(t).Text })
	code, h, body := get(t, tc.URL+"/install.sh")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /install.sh = %d %v", code, h)
	}
	if body != deploy.InstallScript {
		t.Error("/install.sh without a release dir is not the script this build embeds")
	}
	checkShell(t, body)

	cert, _ := x509.ParseCertificate(der)
	fp, spki := sha256.Sum256(der), sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	pin := "sha256//" + base64.StdEncoding.EncodeToString(spki[:])
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	code, out := tc.admin(t, tok, "POST", "/enroll-keys", `{"tags":["tag:gpu"]}`)
	var res struct{ Key, Install string }
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != http.StatusCreated {
		t.Fatalf("create key: %d %s", code, out)
	}
	for _, want := range []string{
		"curl -fsSL -k --pinnedpubkey " + pin + " -o \"$d/install.sh\" '" + tc.URL + "/install.sh' -o \"$d/sig\" '" + tc.URL + "/install.sh.minisig'",
		"echo " + testKey(t).Text + " | openssl base64 -d -A",
		"openssl pkeyutl -verify -pubin",
		"&& sudo sh \"$d/install.sh\" --coordinator '" + tc.URL + "' --pin " + pin + " --fingerprint " + hex.EncodeToString(fp[:]) +
			" --release-key " + testKey(t).Text + " --key -", // the key is asked for
	} {
		if !strings.Contains(res.Install, want) {
			t.Errorf("install command\n%s\nlacks %s", res.Install, want)
		}
	}
	checkShell(t, res.Install)
}

// checkShell parses the rendered script with sh -n, and with shellcheck
// when it is installed.
func checkShell(t *testing.T, script string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "install.sh")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-n", path).CombinedOutput(); err != nil {
		t.Fatalf("sh -n install.sh: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Log("shellcheck not installed (apt-get install shellcheck); skipped the lint")
		return
	}
	if out, err := exec.Command("shellcheck", "-s", "sh", path).CombinedOutput(); err != nil {
		t.Errorf("shellcheck install.sh: %v\n%s", err, out)
	}
}

func TestInstallCommandWithoutSelfSignedCert(t *testing.T) {
	got := installCommandLine(Config{PublicURL: "https://moat.example.com/", ReleaseKey: testKey(t).Text})
	if !strings.HasPrefix(got, "d=$(mktemp -d) && curl -fsSL -o \"$d/install.sh\" 'https://moat.example.com/install.sh' ") ||
		!strings.HasSuffix(got, " --coordinator 'https://moat.example.com' --release-key "+testKey(t).Text+" --key -") || strings.Contains(got, "pinnedpubkey") {
		t.Errorf("got %s", got)
	}
}

// Without a release key, no command pretends to verify what it installs.
func TestNoInstallCommandWithoutReleaseKey(t *testing.T) {
	got := installCommandLine(Config{PublicURL: "https://moat.example.com"})
	if !strings.HasPrefix(got, "# no install command") || !strings.Contains(got, "--release-key") {
		t.Errorf("got %s", got)
	}
}

func TestDownloadsOnlyReleaseFiles(t *testing.T) {
	rel := writeRelease(t)
	if err := os.WriteFile(filepath.Join(rel, "secret"), []byte("no"), 0o600); err != nil {
		t.Fatal(err)
	}
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.ReleaseDir = rel })
	code, _, body := get(t, tc.URL+"/download/"+nodeARM)
	if code != http.StatusOK || body != "build "+nodeARM {
		t.Fatalf("GET %s = %d %q", nodeARM, code, body)
	}
	code, _, sums := get(t, tc.URL+"/download/SHA256SUMS")
	amd, unit := sha256.Sum256([]byte("build "+nodeAMD)), sha256.Sum256([]byte(deploy.NodeUnit))
	if code != http.StatusOK || !strings.Contains(sums, hex.EncodeToString(amd[:])+"  "+nodeAMD+"\n") ||
		!strings.Contains(sums, hex.EncodeToString(unit[:])+"  "+unitFile+"\n") {
		t.Fatalf("computed SHA256SUMS = %d %q", code, sums)
	}
	if code, _, body := get(t, tc.URL+"/download/"+unitFile); code != http.StatusOK || body != deploy.NodeUnit {
		t.Fatalf("GET %s = %d %q", unitFile, code, body)
	}
	for _, bad := range []string{"secret", "..%2Fsecret", "%2E%2E/" + filepath.Base(rel) + "/secret", "moat-node", "install.sh", "SHA256SUMS.minisig"} {
		if code, _, body := get(t, tc.URL+"/download/"+bad); code != http.StatusNotFound || strings.Contains(body, "no\n") {
			t.Errorf("GET /download/%s = %d %q, want 404", bad, code, body)
		}
	}
}

func TestReleaseSumsFileIsServedAsIs(t *testing.T) {
	rel := writeRelease(t)
	const sums = "0000000000000000000000000000000000000000000000000000000000000000  moat-node-linux-amd64\n"
	if err := os.WriteFile(filepath.Join(rel, sumsFile), []byte(sums), 0o644); err != nil {
		t.Fatal(err)
	}
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.ReleaseDir = rel })
	if code, _, body := get(t, tc.URL+"/download/SHA256SUMS"); code != http.StatusOK || body != sums {
		t.Fatalf("GET SHA256SUMS = %d %q", code, body)
	}
}

// TestNodeUnitVerifies runs systemd-analyze verify on the node's unit.
func TestNodeUnitVerifies(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed")
	}
	path := filepath.Join(t.TempDir(), "moat-node.service")
	unit := strings.ReplaceAll(deploy.NodeUnit, "/usr/local/bin/moat-node", "/bin/true") // the binary is not installed here
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput(); err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
