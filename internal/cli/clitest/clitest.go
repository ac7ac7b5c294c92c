// Package clitest builds a moat binary once per test binary and runs it
// as a user would, for tests of command-line behaviour.
package clitest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersion is the version Build stamps into binaries.
const TestVersion = "v0.0.0-clitest"

// Build compiles the main package pkg (an import path) into t.TempDir()
// with TestVersion stamped in and returns the executable's path. Build
// once per test function and share it among subtests: linking is slow.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", path,
		"-ldflags", "-X github.com/moatmesh/moat/internal/cli.version="+TestVersion, pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return path
}

// Result is what one run of a binary did.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs bin with args in an environment with no MOAT_* variables but
// env ("KEY=VALUE") and returns its exit code and output.
func Run(t testing.TB, bin string, env []string, args ...string) Result {
	t.Helper()
	cmd := Command(bin, env, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run %s %v: %v", bin, args, err)
	}
	return Result{Code: cmd.ProcessState.ExitCode(), Stdout: out.String(), Stderr: errb.String()}
}

// Command returns a command that runs bin with args in an environment
// with no MOAT_* variables but env ("KEY=VALUE"), for a test to start
// and stop itself.
func Command(bin string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MOAT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// Want fails the test unless r exited with code and each of outs is in
// stdout and each of errs in stderr.
func (r Result) Want(t testing.TB, code int, outs, errs []string) {
	t.Helper()
	if r.Code != code {
		t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.Code, code, r.Stdout, r.Stderr)
	}
	for _, s := range outs {
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, r.Stdout)
		}
	}
	for _, s := range errs {
		if !strings.Contains(r.Stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.Stderr)
		}
	}
}

// Golden fails the test unless the file at path holds got; with
// UPDATE_DOCS=1 in the environment it writes got there instead.
func Golden(t testing.TB, path, got string) {
	t.Helper()
	if os.Getenv("UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil || string(want) != got {
		t.Errorf("%s is not current (err %v); regenerate it with UPDATE_DOCS=1 go test ./cmd/...", path, err)
	}
}

// WriteFile writes text to name in a new temporary directory and returns
// its path.
func WriteFile(t testing.TB, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Completion checks that bin prints a completion script for each shell,
// and that bash parses the bash one.
func Completion(t *testing.T, bin string) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := Run(t, bin, nil, "completion", shell)
		r.Want(t, 0, []string{filepath.Base(bin)}, nil)
		if shell != "bash" {
			continue
		}
		if _, err := exec.LookPath("bash"); err != nil {
			t.Log("no bash here: not parsing the script")
			continue
		}
		check := exec.Command("bash", "-n")
		check.Stdin = strings.NewReader(r.Stdout)
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("bash -n on the bash completion: %v\n%s", err, out)
		}
	}
}
