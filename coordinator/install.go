package coordinator

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"text/template"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/deploy"
)

// The files /download/ serves; nothing else is ever opened.
const (
	sumsFile = "SHA256SUMS"
	nodeAMD  = "moat-node-linux-amd64"
	nodeARM  = "moat-node-linux-arm64"
)

// installer serves /install.sh and the moat-node builds it downloads.
type installer struct {
	log    *slog.Logger
	script []byte            // rendered once: the URL and pins do not change
	files  map[string]string // served name → path on disk
	sums   []byte            // SHA256SUMS as served
}

// installRoutes registers GET /install.sh and GET /download/{file}.
func (s *Server) installRoutes(r gin.IRoutes) {
	in := newInstaller(s.cfg, s.log)
	r.GET("/install.sh", in.serveScript)
	r.GET("/download/:file", in.serveFile)
}

func newInstaller(cfg Config, log *slog.Logger) *installer {
	in := &installer{log: log, files: releaseFiles(cfg.ReleaseDir)}
	var err error
	if in.script, err = renderInstallScript(cfg.PublicURL, cfg.SelfSignedCert); err != nil {
		log.Error("install script", "err", err)
	}
	if in.sums, err = releaseSums(cfg.ReleaseDir, in.files); err != nil {
		log.Error("release sums", "err", err)
	}
	if len(in.files) == 0 {
		log.Warn("no moat-node builds to serve at /download/; set the release dir (make release)", "dir", cfg.ReleaseDir)
	}
	return in
}

// releaseFiles finds the builds to serve: those present in dir, or with
// dir empty the moat-node next to this executable, as this machine's
// architecture (development).
func releaseFiles(dir string) map[string]string {
	files := map[string]string{}
	if dir == "" {
		exe, err := os.Executable()
		if err != nil || runtime.GOOS != "linux" {
			return files
		}
		files = map[string]string{"moat-node-linux-" + runtime.GOARCH: filepath.Join(filepath.Dir(exe), "moat-node")}
	} else {
		files[nodeAMD], files[nodeARM] = filepath.Join(dir, nodeAMD), filepath.Join(dir, nodeARM)
	}
	for name, path := range files {
		if fi, err := os.Stat(path); err != nil || !fi.Mode().IsRegular() {
			delete(files, name)
		}
	}
	return files
}

// releaseSums returns the release's SHA256SUMS, or computes it from files
// when the release directory has none.
func releaseSums(dir string, files map[string]string) ([]byte, error) {
	if dir != "" {
		b, err := os.ReadFile(filepath.Join(dir, sumsFile))
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return b, err
		}
	}
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var out bytes.Buffer
	for _, name := range names {
		sum, err := fileSHA256(files[name])
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&out, "%s  %s\n", sum, name)
	}
	return out.Bytes(), nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (in *installer) serveScript(c *gin.Context) {
	if in.script == nil {
		c.String(http.StatusServiceUnavailable, "echo 'moat: the coordinator could not render install.sh; see its log' >&2; exit 1\n")
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", in.script)
}

// serveFile serves one of the allowed names; any other name is a 404
// without touching the file system.
func (in *installer) serveFile(c *gin.Context) {
	name := c.Param("file")
	if name == sumsFile && in.sums != nil {
		c.Data(http.StatusOK, "text/plain; charset=utf-8", in.sums)
		return
	}
	path, ok := in.files[name]
	if !ok {
		c.String(http.StatusNotFound, "no such download; this coordinator serves %s\n", in.names())
		return
	}
	f, err := os.Open(path)
	if err != nil {
		in.log.Error("download", "file", name, "err", err)
		c.String(http.StatusServiceUnavailable, "cannot read %s on the coordinator\n", name)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		c.String(http.StatusServiceUnavailable, "cannot read %s on the coordinator\n", name)
		return
	}
	c.Header("Content-Type", "application/octet-stream")
	http.ServeContent(c.Writer, c.Request, name, fi.ModTime(), f)
}

func (in *installer) names() string {
	names := []string{sumsFile}
	for name := range in.files {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// certPins returns a self-signed certificate's SHA-256 fingerprint (hex,
// what moat-node's --coordinator-fingerprint takes) and curl's pin of its
// public key ("sha256//" + base64 SHA-256 of the SubjectPublicKeyInfo).
func certPins(der []byte) (fingerprint, pin string, err error) {
	if len(der) == 0 {
		return "", "", nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", "", fmt.Errorf("self-signed certificate: %w", err)
	}
	fp := sha256.Sum256(der)
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(fp[:]), "sha256//" + base64.StdEncoding.EncodeToString(spki[:]), nil
}

// renderInstallScript renders deploy/install.sh.tmpl for this coordinator.
func renderInstallScript(publicURL string, selfSigned []byte) ([]byte, error) {
	fp, pin, err := certPins(selfSigned)
	if err != nil {
		return nil, err
	}
	if strings.Contains(deploy.NodeUnit, "MOAT_UNIT_EOF") {
		return nil, errors.New("install script: the unit contains the here-document delimiter")
	}
	t, err := template.New("install.sh").Funcs(template.FuncMap{"sq": shellQuote}).Parse(deploy.InstallScript)
	if err != nil {
		return nil, fmt.Errorf("install script: %w", err)
	}
	var out bytes.Buffer
	err = t.Execute(&out, map[string]string{"URL": strings.TrimRight(publicURL, "/"), "Fingerprint": fp, "Pin": pin, "Unit": deploy.NodeUnit})
	if err != nil {
		return nil, fmt.Errorf("install script: %w", err)
	}
	return out.Bytes(), nil
}

// shellQuote quotes s as one POSIX shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// installCommandLine is the one line an admin runs on a GPU host. The
// enrollment key is not on it: `--key -` asks for it on the terminal, so
// that it stays out of the shell's history and of /proc/*/cmdline. With a
// self-signed certificate, curl pins its public key: -k only skips the CA
// check that the pin replaces.
func installCommandLine(cfg Config) string {
	url := strings.TrimRight(cfg.PublicURL, "/") + "/install.sh"
	if _, pin, err := certPins(cfg.SelfSignedCert); err == nil && pin != "" {
		return fmt.Sprintf("curl -fsSL -k --pinnedpubkey %s %s | sudo sh -s -- --key -", pin, url)
	}
	return fmt.Sprintf("curl -fsSL %s | sudo sh -s -- --key -", url)
}
