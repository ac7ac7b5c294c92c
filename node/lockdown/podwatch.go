package lockdown

import (
	"cmp"
	"context"
	"errors"
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

// podState is the pod scope's state besides the matches (dynamic.pods).
type podState struct {
	sourced []string // the PodSource's last patterns
	srcErr  error    // why the PodSource's answer is not known, or nil
	failed  bool     // the last attempt to hold the matches failed: try again
	reason  string   // the failure last reported, so it is reported once
}

// errPodSourceSilent is why the pods are not known before the PodSource
// first answers.
var errPodSourceSilent = errors.New("the pod source has not answered yet")

// podsUnknownLocked says why the lockdown cannot be healthy although its
// tables are as written: the PodSource cannot say which pods to hold.
// "" when it can, or there is none.
func (l *Lockdown) podsUnknownLocked() string {
	if l.pod.srcErr == nil {
		return ""
	}
	return "holding the inference pods failed: which pods to hold is not known: " + l.pod.srcErr.Error()
}

// usePodSource runs the configured PodSource for Watch: each update is
// kept and pokes Watch. Until the first update the pods are not known.
func (l *Lockdown) usePodSource(ctx context.Context, poke chan<- struct{}) {
	src := l.cfg.PodSource
	if src == nil {
		return
	}
	go src.Run(ctx, func(patterns []string, err error) {
		l.mu.Lock()
		if patterns != nil || err == nil { // nil with an error: keep the last
			l.pod.sourced = append([]string{}, patterns...)
		}
		l.pod.srcErr = err
		l.mu.Unlock()
		select {
		case poke <- struct{}{}:
		default:
		}
	})
}

// checkPods matches the pod patterns again, re-applies the tables when
// the matches changed and reports it. While that fails, or the
// PodSource cannot say which pods to hold, the lockdown is not healthy
// (reported once per reason) and the next check tries again. It then
// watches the directories new pods would appear in.
func (l *Lockdown) checkPods(report func(Event), n *podNotifier) {
	if len(l.cfg.PodCgroups) == 0 && l.cfg.PodSource == nil {
		return
	}
	l.mu.Lock()
	diff, err := l.syncPodsLocked()
	reason := l.podsUnknownLocked()
	if err != nil {
		reason = "holding the inference pods failed: " + err.Error()
	}
	switch {
	case reason != "":
		l.setUnhealthy(reason, time.Now())
	case l.pod.reason != "" && l.lostLocked() == "": // known again, tables as written
		l.health.Store(&health{ok: true})
		diff = cmp.Or(diff, "the inference pods are held again")
	}
	fresh := reason != l.pod.reason
	l.pod.reason = reason
	dirs := podDirs(l.podPatternsLocked())
	l.mu.Unlock()
	n.watch(dirs)
	switch {
	case reason != "" && fresh:
		report(Event{Time: time.Now(), Kind: EventFailed, Reason: reason})
	case diff != "":
		report(Event{Time: time.Now(), Kind: EventPods, Reason: diff})
	}
}
