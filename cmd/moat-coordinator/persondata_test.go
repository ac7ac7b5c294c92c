package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/cli"
)

func runCoordinator(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = cli.Run(newRoot(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestUsersExportErase: `users export` writes a person's data to a file
// only its owner reads, `users erase` wants a reason and destroys the
// prompt key; both are in the admin trail.
func TestUsersExportErase(t *testing.T) {
	data := t.TempDir()
	st, err := store.Open(context.Background(), "", data)
	if err != nil {
		t.Fatal(err)
	}
	u, err := st.UpsertUserByOIDC(context.Background(), &store.User{Issuer: "https://idp.example", Subject: "a", Email: "alice@example.com"})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "alice.json")
	if code, _, stderr := runCoordinator("users", "export", "--data-dir", data, "-o", file, "alice@example.com"); code != 0 || !strings.Contains(stderr, "Wrote 0 records of alice@example.com") {
		t.Fatalf("users export: %d %s", code, stderr)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v, want mode 0600", fi, err)
	}
	if code, _, stderr := runCoordinator("users", "erase", "--data-dir", data, "alice@example.com"); code != cli.ExitUsage || !strings.Contains(stderr, "--reason") {
		t.Fatalf("users erase without a reason: %d %s", code, stderr)
	}
	if code, _, stderr := runCoordinator("users", "erase", "--data-dir", data, "--reason", "x", "nobody@example.com"); code != cli.ExitFailure || !strings.Contains(stderr, "not found") {
		t.Fatalf("users erase of nobody: %d %s", code, stderr)
	}
	if code, stdout, stderr := runCoordinator("users", "erase", "--data-dir", data, "--reason", "GDPR Art. 17 request #9", u.ID); code != 0 || !strings.Contains(stdout, "Erased") {
		t.Fatalf("users erase: %d %s %s", code, stdout, stderr)
	}
	code, stdout, stderr := runCoordinator("users", "export", "--data-dir", data, "alice@example.com")
	var exp coordinator.PersonExport
	if code != 0 || json.Unmarshal([]byte(stdout), &exp) != nil || exp.Person.Erased.IsZero() {
		t.Fatalf("export after erasure: %d %s %s", code, stdout, stderr)
	}
	wantCLITrail(t, data, "user.export "+u.ID, "user.erase "+u.ID)
}
