package atrest

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlPtr calls ioctl(fd, req, arg) and returns its errno, or nil.
func ioctlPtr[T any](fd uintptr, req uint, arg *T) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(unsafe.Pointer(arg)))
	if errno != 0 {
		return errno
	}
	return nil
}
