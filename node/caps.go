package node

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// capNetAdmin is CAP_NET_ADMIN's bit in the capability sets.
const capNetAdmin = 12

// hasNetAdmin reports whether this process holds CAP_NET_ADMIN in its
// effective set, as root does and as the installed unit gives the
// moat-node user: what the TUN device, its routes and the lockdown need.
func hasNetAdmin() bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return os.Geteuid() == 0
	}
	defer f.Close()
	return netAdminIn(bufio.NewScanner(f))
}

func netAdminIn(sc *bufio.Scanner) bool {
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		return err == nil && caps&(1<<capNetAdmin) != 0
	}
	return false
}
