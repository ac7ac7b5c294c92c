package atrest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/moatmesh/moat/node/atrest/atresttest"
)

// TestFscryptLoopDevice mounts a real ext4 with the encrypt feature on a
// loop device, sets a v2 policy on one directory, and checks that the
// directory and a file in it are found encrypted, while a plain directory
// of the same filesystem is not (its loop device is not dm-crypt either).
func TestFscryptLoopDevice(t *testing.T) {
	enc, plain := atresttest.Fscrypt(t)
	file := filepath.Join(enc, "weights.gguf")
	if err := os.WriteFile(file, []byte("GGUF"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{enc, file} {
		got := Checker{}.Check(p)
		if !got.Encrypted || got.How != "fscrypt v2 (AES-256-XTS)" || got.Reason != "" {
			t.Errorf("Check(%s) = %+v, want encrypted by fscrypt v2 (AES-256-XTS)", p, got)
		}
	}
	got := Checker{}.Check(plain)
	if got.Encrypted || !strings.Contains(got.Reason, "no fscrypt policy") || !strings.Contains(got.Reason, "not on dm-crypt") {
		t.Errorf("Check(plain dir) = %+v, want not encrypted: no policy, loop device not dm-crypt", got)
	}
}

// TestCheckRefusals: paths fscrypt cannot vouch for count as not
// encrypted, with the reason.
func TestCheckRefusals(t *testing.T) {
	missing := Checker{}.Check(filepath.Join(t.TempDir(), "absent.gguf"))
	if missing.Encrypted || !strings.Contains(missing.Reason, "cannot be examined") {
		t.Errorf("missing file: %+v", missing)
	}
	// /proc is on no block device and has no fscrypt.
	proc := Checker{}.Check("/proc/self/status")
	if proc.Encrypted || !strings.Contains(proc.Reason, "on no block device") {
		t.Errorf("/proc: %+v", proc)
	}
	// A real directory on a filesystem without fscrypt, on a sysfs that
	// has no dm-crypt: whatever /tmp is here, a recorded sysfs without
	// its device says "no block device".
	tmp := Checker{SysFS: t.TempDir()}.Check(t.TempDir())
	if tmp.Encrypted || tmp.Reason == "" {
		t.Errorf("plain dir: %+v", tmp)
	}
}

// TestDMCryptRecordedSysfs walks a recorded sysfs tree (testdata/laptop,
// see its README): LUKS2 directly, LVM on LUKS2 through slaves and plain
// dm-crypt are found; a partition, plain LVM and an unknown device are
// not.
func TestDMCryptRecordedSysfs(t *testing.T) {
	c := Checker{SysFS: "testdata/laptop"}
	for _, tc := range []struct {
		major, minor uint32
		how, err     string
	}{
		{253, 0, "dm-crypt LUKS2 (dm-0)", ""},
		{253, 1, "dm-crypt LUKS2 (dm-0)", ""},
		{253, 2, "dm-crypt PLAIN (dm-2)", ""},
		{253, 3, "", "device 253:3 is not on dm-crypt"},
		{259, 2, "", "device 259:2 is not on dm-crypt"},
		{259, 3, "", "device 259:3 is not on dm-crypt"}, // the LUKS container itself holds ciphertext only
		{8, 1, "", "device 8:1 is not on dm-crypt"},
		{0, 45, "", "on no block device (device 0:45)"},
	} {
		how, err := c.DMCrypt(tc.major, tc.minor)
		if how != tc.how || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("DMCrypt(%d:%d) = %q, %v; want %q, %q", tc.major, tc.minor, how, err, tc.how, tc.err)
		}
	}
}

// TestDMCryptLiveSysfs reads this kernel's own /sys for the device of /:
// whatever it is, the walk ends with an answer, not a panic or a hang.
func TestDMCryptLiveSysfs(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err != nil {
		t.Fatal(err)
	}
	how, err := Checker{}.DMCrypt(unix.Major(st.Dev), unix.Minor(st.Dev))
	t.Logf("/ on %d:%d: %q, %v", unix.Major(st.Dev), unix.Minor(st.Dev), how, err)
	if (how == "") == (err == nil) {
		t.Errorf("DMCrypt gave both or neither: %q, %v", how, err)
	}
}
