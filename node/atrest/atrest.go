// Package atrest finds out whether a path's data sits on encrypted storage:
// an fscrypt policy on the path itself, read with the kernel's
// FS_IOC_GET_ENCRYPTION_POLICY_EX ioctl, or a filesystem on a dm-crypt
// device (LUKS or plain), found by walking /sys/dev/block/MAJ:MIN of the
// filesystem's device and the devices under it (its slaves, and the disk
// of a partition).
//
// Anything it cannot establish counts as not encrypted, with the reason.
package atrest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/moatmesh/moat/mesh/wire"
)

// Checker looks paths up. The zero value reads the running kernel's
// /sys.
type Checker struct {
	// SysFS is where sysfs is mounted. Default "/sys"; tests point it at
	// a recorded tree.
	SysFS string
}

// Check reports whether path is on encrypted storage.
func (c Checker) Check(path string) wire.Storage {
	out := wire.Storage{Path: path}
	how, fsErr := Fscrypt(path)
	if fsErr == nil {
		out.Encrypted, out.How = true, how
		return out
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		out.Reason = fmt.Sprintf("%s cannot be examined: %v", path, err)
		return out
	}
	how, dmErr := c.DMCrypt(unix.Major(st.Dev), unix.Minor(st.Dev))
	if dmErr == nil {
		out.Encrypted, out.How = true, how
		return out
	}
	out.Reason = fmt.Sprintf("%s is not on encrypted storage: %v, and %v", path, fsErr, dmErr)
	return out
}

// Errors of Fscrypt.
var (
	ErrNoPolicy    = errors.New("it has no fscrypt policy")
	ErrUnsupported = errors.New("its filesystem does not support fscrypt")
)

// Fscrypt returns the fscrypt policy of path, e.g. "fscrypt v2
// (AES-256-XTS)", or why there is none.
func Fscrypt(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot open it: %w", err)
	}
	defer f.Close()
	var arg unix.FscryptGetPolicyExArg
	arg.Size = uint64(len(arg.Policy))
	raw, err := f.SyscallConn()
	if err != nil {
		return "", err
	}
	var errno error
	if err := raw.Control(func(fd uintptr) {
		errno = ioctlPtr(fd, unix.FS_IOC_GET_ENCRYPTION_POLICY_EX, &arg)
	}); err != nil {
		return "", err
	}
	switch {
	case errors.Is(errno, unix.ENODATA):
		return "", ErrNoPolicy
	case errors.Is(errno, unix.ENOTTY), errors.Is(errno, unix.EOPNOTSUPP):
		return "", ErrUnsupported
	case errno != nil:
		return "", fmt.Errorf("its fscrypt policy cannot be read: %w", errno)
	}
	version := "v1"
	if arg.Policy[0] == unix.FSCRYPT_POLICY_V2 {
		version = "v2"
	}
	return fmt.Sprintf("fscrypt %s (%s)", version, modeName(arg.Policy[1])), nil
}

func modeName(m uint8) string {
	switch m {
	case unix.FSCRYPT_MODE_AES_256_XTS:
		return "AES-256-XTS"
	case unix.FSCRYPT_MODE_AES_128_CBC:
		return "AES-128-CBC"
	case unix.FSCRYPT_MODE_ADIANTUM:
		return "Adiantum"
	case 10: // FSCRYPT_MODE_AES_256_HCTR2, newer than x/sys
		return "AES-256-HCTR2"
	}
	return fmt.Sprintf("mode %d", m)
}

// maxDepth bounds the walk down a device stack (LVM on LUKS on a
// partition is three).
const maxDepth = 8

// DMCrypt reports whether the block device MAJ:MIN is, or sits on, a
// dm-crypt mapping: one whose dm/uuid starts with "CRYPT-" (LUKS1, LUKS2
// and plain mappings made by cryptsetup).
func (c Checker) DMCrypt(major, minor uint32) (string, error) {
	root := c.SysFS
	if root == "" {
		root = "/sys"
	}
	dev := filepath.Join(root, "dev", "block", fmt.Sprintf("%d:%d", major, minor))
	if _, err := os.Stat(dev); err != nil {
		return "", fmt.Errorf("its filesystem is on no block device (device %d:%d)", major, minor)
	}
	if how, ok := findCrypt(dev, maxDepth); ok {
		return how, nil
	}
	return "", fmt.Errorf("its filesystem's device %d:%d is not on dm-crypt", major, minor)
}

// findCrypt walks dir, its slaves and, for a partition, its disk.
func findCrypt(dir string, depth int) (string, bool) {
	if depth == 0 {
		return "", false
	}
	if uuid, err := os.ReadFile(filepath.Join(dir, "dm", "uuid")); err == nil {
		if kind, ok := cryptKind(strings.TrimSpace(string(uuid))); ok {
			return fmt.Sprintf("dm-crypt %s (%s)", kind, deviceName(dir)), true
		}
	}
	slaves, _ := os.ReadDir(filepath.Join(dir, "slaves"))
	for _, s := range slaves {
		if how, ok := findCrypt(filepath.Join(dir, "slaves", s.Name()), depth-1); ok {
			return how, true
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return findCrypt(filepath.Dir(real), depth-1)
		}
	}
	return "", false
}

// cryptKind reads a dm uuid as cryptsetup writes it:
// "CRYPT-LUKS2-<uuid>-<name>", "CRYPT-LUKS1-…", "CRYPT-PLAIN-<name>".
func cryptKind(uuid string) (string, bool) {
	rest, ok := strings.CutPrefix(uuid, "CRYPT-")
	if !ok {
		return "", false
	}
	kind, _, _ := strings.Cut(rest, "-")
	if kind == "" {
		kind = "unknown"
	}
	return kind, true
}

// deviceName is the kernel's name of the device in dir ("dm-0"), read
// from its uevent, else the directory's own name.
func deviceName(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, "uevent")); err == nil {
		for line := range strings.Lines(string(b)) {
			if name, ok := strings.CutPrefix(strings.TrimSpace(line), "DEVNAME="); ok {
				return name
			}
		}
	}
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		return filepath.Base(real)
	}
	return filepath.Base(dir)
}
