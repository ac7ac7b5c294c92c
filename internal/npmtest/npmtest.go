// Package npmtest installs the npm packages a Go test drives from Node.js
// (the openai SDK, Playwright) from a committed package.json and
// package-lock.json, and runs Node scripts against them.
//
// Packages go into the directory's node_modules (ignored by git) and are
// installed again only when the lock file changed. Without node or npm a
// test fails in CI (CI=true) and skips elsewhere, saying what is missing.
package npmtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Need returns the path of command name, or skips t (fails it in CI)
// with how to install pkg.
func Need(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " is not installed (Debian package " + pkg + "; `make test` as root installs it)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip("skipping: " + msg)
	return ""
}

// Install makes sure dir's node_modules matches dir's package-lock.json,
// running `npm ci` when it does not. It returns the node binary.
func Install(t testing.TB, dir string) string {
	t.Helper()
	node := Need(t, "node", "nodejs")
	npm := Need(t, "npm", "npm")
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", ".moat-lock-sha256")
	if got, err := os.ReadFile(stamp); err == nil && bytes.Equal(got, []byte(want)) {
		return node
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	return node
}

// Run runs `node script args…` in dir with env added to the test's
// environment, failing t with the script's output when it fails. It
// returns what the script printed.
func Run(t testing.TB, ctx context.Context, node, dir string, env []string, script string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, out)
	}
	return string(out)
}
