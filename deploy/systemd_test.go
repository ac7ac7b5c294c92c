package deploy_test

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// maxExposure is the highest `systemd-analyze security` exposure a shipped
// unit may score (0 is fully sandboxed, 10 not at all).
const maxExposure = 2.0

var overall = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestUnitsHardened scores the shipped units offline, as systemd would
// run them. PID 1 here need not be systemd: --offline reads the files.
func TestUnitsHardened(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd); the units are not scored")
	}
	for _, unit := range []string{"systemd/moat-coordinator.service", "systemd/moat-node.service"} {
		out, err := exec.Command(bin, "security", "--offline=yes", "--no-pager", unit).CombinedOutput()
		m := overall.FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", unit, err, out)
		}
		score, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: exposure %.1f", unit, score)
		if score > maxExposure {
			t.Errorf("%s scores %.1f on systemd-analyze security, want at most %.1f:\n%s", unit, score, maxExposure, out)
		}
	}
}

// TestNodeUnitReachesTUN: with PrivateDevices=yes the node's private /dev
// has no /dev/net, and DeviceAllow= creates no node, so the unit must
// bind the TUN clone device back as well as allow it.
func TestNodeUnitReachesTUN(t *testing.T) {
	unit, err := os.ReadFile("systemd/moat-node.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"PrivateDevices=yes", "BindPaths=/dev/net/tun", "DeviceAllow=/dev/net/tun rw"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(line) + `$`).Match(unit) {
			t.Errorf("moat-node.service lacks %q: moat-node could not open /dev/net/tun", line)
		}
	}
}
