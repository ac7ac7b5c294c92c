package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSignVerifyAndOpenSSL signs with a generated key, checks the
// signature with minisign's verifier and with openssl (what install.sh
// uses), and sees a tampered file refused by both.
func TestSignVerifyAndOpenSSL(t *testing.T) {
	dir := t.TempDir()
	prefix := filepath.Join(dir, "release")
	must(t, run([]string{"keygen", prefix}))
	file := filepath.Join(dir, "SHA256SUMS")
	must(t, os.WriteFile(file, []byte("0000  moat-node-linux-amd64\n"), 0o644))
	must(t, run([]string{"sign", "-key", prefix + ".key", "-version", "v1.2.3", file}))

	sig, err := os.ReadFile(file + ".minisig")
	must(t, err)
	manifest := regexp.MustCompile(`\ntrusted comment: file:SHA256SUMS version:v1\.2\.3 date:(\S+) expires:(\S+)\n`).FindSubmatch(sig)
	if manifest == nil {
		t.Fatalf("signature lacks the manifest in its trusted comment:\n%s", sig)
	}
	date, err1 := time.Parse(time.RFC3339, string(manifest[1]))
	expires, err2 := time.Parse(time.RFC3339, string(manifest[2]))
	if err1 != nil || err2 != nil || time.Since(date) > time.Minute || expires.Sub(date) != 90*24*time.Hour {
		t.Errorf("manifest date %s expires %s: want now and 90 days later", manifest[1], manifest[2])
	}
	pub, err := os.ReadFile(filepath.Join(dir, "minisign.pub"))
	must(t, err)
	want, err := os.ReadFile(prefix + ".pub")
	must(t, err)
	if !bytes.Equal(pub, want) {
		t.Errorf("minisign.pub next to the files is not the key's public key")
	}
	must(t, run([]string{"verify", "-pub", prefix + ".pub", file}))
	opensslVerifies(t, dir, pub, file, true)

	must(t, os.WriteFile(file, []byte("1111  moat-node-linux-amd64\n"), 0o644))
	if err := run([]string{"verify", "-pub", prefix + ".pub", file}); err == nil {
		t.Error("a tampered file verified")
	}
	opensslVerifies(t, dir, pub, file, false)
}

func TestSignRefusesWithoutKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	must(t, os.WriteFile(file, []byte("x"), 0o644))
	if err := run([]string{"sign", file}); err == nil {
		t.Error("sign without -key or -throwaway succeeded")
	}
	must(t, run([]string{"sign", "-throwaway", file}))
}

// opensslVerifies checks file's signature as install.sh does: the raw
// Ed25519 signature against the key as a PEM SubjectPublicKeyInfo.
func opensslVerifies(t *testing.T, dir string, pubText []byte, file string, want bool) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	lines := strings.Split(string(pubText), "\n")
	raw, err := base64.StdEncoding.DecodeString(lines[1])
	must(t, err)
	der := append([]byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}, raw[10:]...)
	pem := "-----BEGIN PUBLIC KEY-----\n" + base64.StdEncoding.EncodeToString(der) + "\n-----END PUBLIC KEY-----\n"
	must(t, os.WriteFile(filepath.Join(dir, "key.pem"), []byte(pem), 0o644))
	sigText, err := os.ReadFile(file + ".minisig")
	must(t, err)
	sig, err := base64.StdEncoding.DecodeString(strings.Split(string(sigText), "\n")[1])
	must(t, err)
	if string(sig[:2]) != "Ed" {
		t.Fatalf("signature algorithm %q, want the legacy Ed that openssl verifies", sig[:2])
	}
	must(t, os.WriteFile(filepath.Join(dir, "sig"), sig[10:], 0o644))
	out, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", filepath.Join(dir, "key.pem"),
		"-rawin", "-in", file, "-sigfile", filepath.Join(dir, "sig")).CombinedOutput()
	if (err == nil) != want {
		t.Errorf("openssl verify = %v, want ok=%v\n%s", err, want, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
