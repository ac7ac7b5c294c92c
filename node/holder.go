package node

import (
	"errors"
	"net"

	"golang.org/x/sys/unix"
)

// holderSocket is an abstract unix socket a node binds while it watches
// its lockdown. Abstract sockets belong to a network namespace, as the
// lockdown's tables do, so `moat-node lockdown off` finds the node that
// would restore the tables it is asked to remove.
const holderSocket = "@moat-node-lockdown"

// answerHolder answers (by closing) every connection to ln until ln is
// closed.
func answerHolder(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed
		}
		c.Close()
	}
}

// LockdownHolder returns the pid of a moat-node that watches the
// lockdown in this network namespace (and would restore it within a
// second if it were removed), or 0 when none does.
func LockdownHolder() int {
	c, err := net.Dial("unix", holderSocket)
	if err != nil {
		return 0
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return 0
	}
	pid := 0
	cerr := raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err == nil {
			pid = int(cred.Pid)
		}
	})
	if errors.Join(cerr) != nil {
		return 0
	}
	return pid
}
