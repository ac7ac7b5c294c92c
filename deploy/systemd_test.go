package deploy_test

import (
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// maxExposure is the highest `systemd-analyze security` exposure a shipped
// unit may score (0 is fully sandboxed, 10 not at all).
const maxExposure = 2.0

// maxExposureNode is the node's: 0.2 above maxExposure for what running
// stdio MCP servers safely needs (CAP_SETPCAP to empty their bounding set
// +0.3, Delegate=yes for their own cgroups +0.1, MemoryDenyWriteExecute
// applied by the node to itself rather than inherited by them +0.1,
// which systemd-analyze cannot see).
const maxExposureNode = 2.2

var overall = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// TestUnitsHardened scores the shipped units offline, as systemd would
// run them. PID 1 here need not be systemd: --offline reads the files.
func TestUnitsHardened(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd); the units are not scored")
	}
	for unit, most := range map[string]float64{"systemd/moat-coordinator.service": maxExposure, "systemd/moat-node.service": maxExposureNode} {
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
		if score > most {
			t.Errorf("%s scores %.1f on systemd-analyze security, want at most %.1f:\n%s", unit, score, most, out)
		}
	}
}
