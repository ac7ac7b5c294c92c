// Package atresttest gives tests a real fscrypt-encrypted ext4 filesystem
// on a loop device.
package atresttest

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Fscrypt makes an ext4 filesystem with the encrypt feature in an image
// under t.TempDir, mounts it on a loop device, adds a random key with
// FS_IOC_ADD_ENCRYPTION_KEY and sets a v2 policy (AES-256-XTS) on one
// directory. It returns that directory and a plain directory of the same
// filesystem, and unmounts at the end of the test. It skips the test,
// saying why, only when not run as root.
func Fscrypt(t testing.TB) (encrypted, plain string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting an fscrypt filesystem on a loop device needs root; run the tests as root")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	run(t, "truncate", "-s", "32M", img)
	run(t, "mkfs.ext4", "-q", "-O", "encrypt", img)
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "-o", "loop", img, mnt)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	encrypted, plain = filepath.Join(mnt, "secret"), filepath.Join(mnt, "plain")
	for _, d := range []string{encrypted, plain} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	id := addKey(t, mnt)
	setPolicy(t, encrypted, id)
	return encrypted, plain
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// addKeyArg is struct fscrypt_add_key_arg followed by its raw key.
type addKeyArg struct {
	arg unix.FscryptAddKeyArg
	raw [64]byte
}

// addKey adds a random 64-byte key to the filesystem at mnt and returns
// its identifier.
func addKey(t testing.TB, mnt string) [16]byte {
	t.Helper()
	var a addKeyArg
	rand.Read(a.raw[:])
	a.arg.Key_spec.Type = unix.FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER
	a.arg.Raw_size = uint32(len(a.raw))
	ioctl(t, mnt, unix.FS_IOC_ADD_ENCRYPTION_KEY, unsafe.Pointer(&a))
	var id [16]byte
	copy(id[:], a.arg.Key_spec.U[:16])
	return id
}

// setPolicy sets a v2 policy with key id on the empty directory dir.
func setPolicy(t testing.TB, dir string, id [16]byte) {
	t.Helper()
	p := unix.FscryptPolicyV2{Version: unix.FSCRYPT_POLICY_V2, Contents_encryption_mode: unix.FSCRYPT_MODE_AES_256_XTS,
		Filenames_encryption_mode: unix.FSCRYPT_MODE_AES_256_CTS, Flags: unix.FSCRYPT_POLICY_FLAGS_PAD_32, Master_key_identifier: id}
	ioctl(t, dir, unix.FS_IOC_SET_ENCRYPTION_POLICY, unsafe.Pointer(&p))
}

func ioctl(t testing.TB, path string, req uint, arg unsafe.Pointer) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(arg)); errno != 0 {
		t.Fatalf("ioctl %#x on %s: %v", req, path, errno)
	}
}
