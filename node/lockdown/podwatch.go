package lockdown

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// podNotifier tells Watch at once when a cgroup is created (or removed) in one of the
// directories a new pod cgroup would appear in (inotify), so that a pod
// started after Apply is held within milliseconds, before its containers
// run (the kubelet creates a pod's cgroup before its sandbox). Watch
// also matches the patterns again every WatchInterval, so a missed
// notification costs at most that.
type podNotifier struct {
	file *os.File // the inotify instance, read through the runtime's poller
}

// newPodNotifier starts an inotify instance whose events poke poke until
// ctx ends, or returns nil when inotify is not available (polling still
// works then).
func newPodNotifier(ctx context.Context, poke chan<- struct{}) *podNotifier {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil
	}
	n := &podNotifier{file: os.NewFile(uintptr(fd), "inotify")}
	go func() {
		<-ctx.Done()
		n.file.Close() // ends the reader below
	}()
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := n.file.Read(buf); err != nil {
				return
			}
			select {
			case poke <- struct{}{}:
			default:
			}
		}
	}()
	return n
}

// watch adds dirs to the watched directories (adding one twice is
// harmless; a removed directory drops out by itself).
func (n *podNotifier) watch(dirs []string) {
	if n == nil {
		return
	}
	rc, err := n.file.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { // fails, adding nothing, once ctx closed the file
		for _, d := range dirs {
			unix.InotifyAddWatch(int(fd), d, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_ONLYDIR) // a directory gone meanwhile is fine
		}
	})
}

// checkPods matches the pod patterns again, re-applies the tables when
// the matches changed and reports it; a failure leaves the lockdown
// unhealthy (a new pod may not be held) until a later check succeeds.
// It then watches the directories new pods would appear in.
func (l *Lockdown) checkPods(report func(Event), n *podNotifier) {
	if len(l.cfg.PodCgroups) == 0 {
		return
	}
	l.mu.Lock()
	diff, err := l.syncPodsLocked()
	if err != nil {
		l.setUnhealthy("holding the inference pods failed: "+err.Error(), time.Now())
	}
	l.mu.Unlock()
	n.watch(podDirs(l.cfg.PodCgroups))
	switch {
	case err != nil:
		report(Event{Time: time.Now(), Kind: EventFailed, Reason: "holding the inference pods failed: " + err.Error()})
	case diff != "":
		report(Event{Time: time.Now(), Kind: EventPods, Reason: diff})
	}
}
