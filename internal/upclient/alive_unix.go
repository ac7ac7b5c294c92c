//go:build unix

package upclient

import (
	"net"
	"syscall"
)

// connAlive reports whether an idle kept connection is still open and
// quiet: a peek that must not block finds nothing to read (a closed
// connection reads its end, a reset one an error, and a server has
// nothing to say between answers).
func connAlive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = err == syscall.EAGAIN
		return true // never wait
	})
	return err == nil && alive
}
