package cgroupfs

import (
	"errors"
	"strings"
	"testing"
)

func TestMountIn(t *testing.T) {
	hybrid := `22 28 0:20 / /sys rw,nosuid shared:7 - sysfs sysfs rw
25 22 0:22 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
`
	if got, err := mountIn(strings.NewReader(hybrid)); err != nil || got != "/sys/fs/cgroup/unified" {
		t.Errorf("hybrid: %q, %v; want /sys/fs/cgroup/unified", got, err)
	}
	v1 := "27 25 0:24 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd\nbroken line without separator\n"
	if got, err := mountIn(strings.NewReader(v1)); !errors.Is(err, ErrNotMounted) {
		t.Errorf("cgroup v1 only: %q, %v; want ErrNotMounted", got, err)
	}
}

func TestMountHere(t *testing.T) {
	m, err := Mount()
	if errors.Is(err, ErrNotMounted) {
		t.Skip("this machine has no cgroup v2 hierarchy")
	}
	if err != nil || !strings.HasPrefix(m, "/") {
		t.Fatalf("Mount() = %q, %v", m, err)
	}
}
