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

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/deploy"
)

// The files the installer serves; nothing else is ever opened.
const (
	sumsFile   = "SHA256SUMS"
	scriptFile = "install.sh"
	unitFile   = "moat-node.service"
	sigSuffix  = ".minisig" // a minisign signature of the file it follows
	nodeAMD    = "moat-node-linux-amd64"
	nodeARM    = "moat-node-linux-arm64"
)

// installer serves /install.sh with its signature, and under /download/
// the moat-node builds, their unit and SHA256SUMS with its signature.
type installer struct {
	log   *slog.Logger
	files map[string]string // served name → path on disk (the builds)
	blobs map[string][]byte // served name → content (the small files)
}

// installRoutes registers GET /install.sh, /install.sh.minisig and
// /download/{file}.
func (s *Server) installRoutes(r gin.IRoutes) {
	in := newInstaller(s.cfg, s.log)
	r.GET("/"+scriptFile, in.serveScript)
	r.GET("/"+scriptFile+sigSuffix, in.serveScript)
	r.GET("/download/:file", in.serveFile)
}

func newInstaller(cfg Config, log *slog.Logger) *installer {
	in := &installer{log: log, files: releaseFiles(cfg.ReleaseDir), blobs: releaseBlobs(cfg.ReleaseDir, log)}
	if _, ok := in.blobs[sumsFile]; !ok {
		sums, err := computeSums(in.files, in.blobs[unitFile])
		if err != nil {
			log.Error("release sums", "err", err)
		} else {
			in.blobs[sumsFile] = sums
		}
	}
	if len(in.files) == 0 {
		log.Warn("no moat-node builds to serve at /download/; set the release dir (make release)", "dir", cfg.ReleaseDir)
	}
	in.checkSignatures(cfg.ReleaseKey)
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

// releaseBlobs reads the release's small files: install.sh, the unit,
// SHA256SUMS and their signatures. What the release dir lacks (or, with
// no release dir, everything) comes from this build: install.sh and the
// unit as embedded, unsigned.
func releaseBlobs(dir string, log *slog.Logger) map[string][]byte {
	blobs := map[string][]byte{}
	if dir != "" {
		for _, name := range []string{scriptFile, scriptFile + sigSuffix, unitFile, sumsFile, sumsFile + sigSuffix} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				blobs[name] = b
			} else if !errors.Is(err, os.ErrNotExist) {
				log.Error("release file", "file", name, "err", err)
			}
		}
	}
	if _, ok := blobs[scriptFile]; !ok {
		blobs[scriptFile] = []byte(deploy.InstallScript)
	}
	if _, ok := blobs[unitFile]; !ok {
		blobs[unitFile] = []byte(deploy.NodeUnit)
	}
	return blobs
}

// computeSums makes SHA256SUMS for a release dir that has none: the
// builds and the unit. Nothing signs it; the install command then fails.
func computeSums(files map[string]string, unit []byte) ([]byte, error) {
	sums := map[string]string{unitFile: fmt.Sprintf("%x", sha256.Sum256(unit))}
	for name, path := range files {
		sum, err := fileSHA256(path)
		if err != nil {
			return nil, err
		}
		sums[name] = sum
	}
	names := make([]string, 0, len(sums))
	for name := range sums {
		names = append(names, name)
	}
	sort.Strings(names)
	var out bytes.Buffer
	for _, name := range names {
		fmt.Fprintf(&out, "%s  %s\n", sums[name], name)
	}
	return out.Bytes(), nil
}

// checkSignatures says at start whether install.sh and SHA256SUMS verify
// with the release key, as GPU hosts will check them: a release signed by
// another key, or not at all, makes every install fail.
func (in *installer) checkSignatures(keyText string) {
	if keyText == "" {
		in.log.Warn("no --release-key: the coordinator gives no install command, since it could not verify what it installs; " +
			"start it with --release-key RW… (the release's minisign.pub)")
		return
	}
	key, err := ParseReleaseKey(keyText)
	if err != nil {
		in.log.Error("release key", "err", err)
		return
	}
	for _, name := range []string{scriptFile, sumsFile} {
		sig, ok := in.blobs[name+sigSuffix]
		if !ok {
			in.log.Error("release not signed: GPU hosts will refuse to install; serve a release made by make release (--release-dir)", "file", name+sigSuffix)
			continue
		}
		if err := key.verify(in.blobs[name], sig); err != nil {
			in.log.Error("release signature does not verify with --release-key: GPU hosts will refuse to install", "file", name, "err", err)
		}
	}
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

// serveScript serves install.sh or its signature, as the release has them.
func (in *installer) serveScript(c *gin.Context) {
	in.serveBlob(c, strings.TrimPrefix(c.Request.URL.Path, "/"))
}

// serveBlob serves one of the small files, or a 404.
func (in *installer) serveBlob(c *gin.Context, name string) {
	b, ok := in.blobs[name]
	if !ok {
		c.String(http.StatusNotFound, "no %s: this coordinator serves an unsigned release; see its log\n", name)
		return
	}
	c.Data(http.StatusOK, "text/plain; charset=utf-8", b)
}

// serveFile serves one of the allowed names; any other name is a 404
// without touching the file system.
func (in *installer) serveFile(c *gin.Context) {
	name := c.Param("file")
	if _, ok := in.blobs[name]; ok && name != scriptFile && name != scriptFile+sigSuffix {
		in.serveBlob(c, name)
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
	var names []string
	for name := range in.blobs {
		if name != scriptFile && name != scriptFile+sigSuffix {
			names = append(names, name)
		}
	}
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

// installCommandLine is the one line an admin runs on a GPU host. It
// downloads install.sh and its signature, checks the signature with
// openssl against the release key it carries, and only then runs the
// script, which checks SHA256SUMS's signature and the downloads the same
// way: the coordinator is not trusted with what the host runs. The
// enrollment key is not on it: `--key -` asks for it on the terminal, so
// that it stays out of the shell's history and of /proc/*/cmdline. With a
// self-signed certificate, curl pins its public key: -k only skips the CA
// check that the pin replaces. Without a release key there is no honest
// command to give, and the line says how to get one.
func installCommandLine(cfg Config) string {
	if cfg.ReleaseKey == "" {
		return "# no install command: start moat-coordinator with --release-key RW… (the release's minisign.pub), " +
			"so that the command can verify what it installs"
	}
	base := strings.TrimRight(cfg.PublicURL, "/")
	curl, origin := "curl -fsSL", "--coordinator "+shellQuote(base)
	script, sig := shellQuote(base+"/install.sh"), shellQuote(base+"/install.sh.minisig")
	if fp, pin, err := certPins(cfg.SelfSignedCert); err == nil && pin != "" {
		curl += " -k --pinnedpubkey " + pin
		origin += " --pin " + pin + " --fingerprint " + fp
	}
	key := cfg.ReleaseKey
	return `d=$(mktemp -d) && ` + curl + ` -o "$d/install.sh" ` + script + ` -o "$d/sig" ` + sig +
		` && printf '%s\n' '-----BEGIN PUBLIC KEY-----' "MCowBQYDK2VwAyEA$(echo ` + key + ` | openssl base64 -d -A | tail -c 32 | openssl base64 -A)" '-----END PUBLIC KEY-----' >"$d/key.pem"` +
		` && sed -n 2p "$d/sig" | openssl base64 -d -A | tail -c 64 >"$d/sig.bin"` +
		` && openssl pkeyutl -verify -pubin -inkey "$d/key.pem" -rawin -in "$d/install.sh" -sigfile "$d/sig.bin"` +
		` && sudo sh "$d/install.sh" ` + origin + ` --release-key ` + key + ` --key -`
}

// shellQuote quotes s as one POSIX shell word.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
