package uitest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/npmtest"
)

// TestUI drives the web UI in chromium: see js/ui.spec.mjs for the
// checks. The scene takes under ten seconds to build (most of it waiting
// for the node to ship the audit record), the browser part about fifteen.
func TestUI(t *testing.T) {
	chromium := npmtest.Need(t, "chromium", "chromium")
	nodeBin := npmtest.Install(t, "js")
	sc := buildScene(t)

	artifacts, err := filepath.Abs(filepath.Join("..", "..", "artifacts", "ui"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(artifacts); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	docs := ""
	if os.Getenv("MOAT_UI_DOCS") == "1" {
		if docs, err = filepath.Abs(filepath.Join("..", "..", "docs", "img")); err != nil {
			t.Fatal(err)
		}
	}
	profiles := t.TempDir()
	c := sc.coord
	env := []string{
		"MOAT_URL=" + c.URL,
		// The coordinator's clock stands still while the script runs, so
		// the script computes each person's TOTP code for this time.
		"MOAT_NOW=" + strconv.FormatInt(c.Clock.Now().Unix(), 10),
		"MOAT_CHROMIUM=" + chromium,
		"MOAT_PROFILES=" + profiles,
		"MOAT_ARTIFACTS=" + artifacts,
		"MOAT_DOCS_IMG=" + docs,
		"ADMIN_EMAIL=" + sc.admin.Email, "ADMIN_PASSWORD=" + sc.admin.Password, "ADMIN_TOTP=" + sc.admin.TOTP,
		"MEMBER_EMAIL=" + sc.member.Email, "MEMBER_PASSWORD=" + sc.member.Password, "MEMBER_TOTP=" + sc.member.TOTP,
		"USER_EMAIL=" + userEmail, "LAPTOP_NAME=" + laptopName, "NODE_NAME=" + nodeName, "MODEL=" + model,
		"PASSKEY_NAME=" + passkeyName, "EVIL_DEVICE=" + evilDevice, "EVIL_NODE=" + evilNode, "AUDIT_ID=" + sc.auditID,
	}
	// The script stops itself after 120 s (the steps take about 40 s on a
	// quiet machine; a loaded one takes several times that); this is the
	// backstop.
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	t.Log(npmtest.Run(t, ctx, nodeBin, "js", env, "ui.spec.mjs"))

	if left := processesUsing(profiles); len(left) > 0 {
		t.Errorf("browser processes left behind: %q", left)
	}
}

// processesUsing returns the command lines of running processes that
// name dir, waiting a little for exiting ones to go.
func processesUsing(dir string) []string {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var found []string
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, err := os.ReadFile(p)
			if err == nil && bytes.Contains(b, []byte(dir)) {
				found = append(found, string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
			}
		}
		if len(found) == 0 || time.Now().After(deadline) {
			return found
		}
	}
}
