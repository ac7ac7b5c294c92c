package lockdown

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// PodSource names pods for the lockdown to hold, by cgroup pattern
// (like Config.PodCgroups), as they come and go.
type PodSource interface {
	// Run calls update with the whole current set of patterns at the
	// start and whenever it changes, with an error when some pod cannot
	// be held, or with nil patterns and an error when it cannot know
	// them (the last patterns stay held); it returns when ctx ends.
	// update does not block for long.
	Run(ctx context.Context, update func(patterns []string, err error))
}

// podCgroup is one cgroup v2 matched by Config.PodCgroups: its path
// relative to the cgroup2 mount and its id.
type podCgroup struct {
	path string
	id   uint64
}

// checkPodCgroups validates the patterns and destinations of the pod
// scope.
func checkPodCgroups(c Config) []error {
	var errs []error
	for _, p := range c.PodCgroups {
		_, err := path.Match(p, "")
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("pod cgroup pattern %q: %w", p, err))
		case strings.Trim(p, "/") == "" || slices.Contains(strings.Split(strings.Trim(p, "/"), "/"), ".."):
			errs = append(errs, fmt.Errorf("pod cgroup pattern %q must name cgroups below the cgroup2 mount", p))
		}
	}
	for _, p := range c.PodAllow {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("pod destination network %v is not valid", p))
		}
	}
	return append(errs, checkAddrPorts("pod destination", c.PodAllowPorts)...)
}

// findPods lists the cgroups that match the patterns now, sorted by path
// and without duplicates. A cgroup that goes away while it is read is
// left out: its processes are gone with it.
func findPods(patterns []string) ([]podCgroup, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	root, err := cgroup2Mount()
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, p := range patterns {
		m, err := filepath.Glob(filepath.Join(root, strings.Trim(p, "/")))
		if err != nil {
			return nil, fmt.Errorf("pod cgroup pattern %q: %w", p, err)
		}
		paths = append(paths, m...)
	}
	slices.Sort(paths)
	var out []podCgroup
	for _, dir := range slices.Compact(paths) {
		var st unix.Stat_t
		if unix.Stat(dir, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue // a file matched, or the cgroup went away
		}
		rel, _ := filepath.Rel(root, dir)
		out = append(out, podCgroup{path: rel, id: st.Ino})
	}
	return out, nil
}

// podDirs are the directories in which a new match of the patterns would
// be created: every existing directory matched by a pattern's leading
// levels (the cgroup2 mount itself for a pattern of one level). Watch
// watches them for new cgroups.
func podDirs(patterns []string) []string {
	root, err := cgroup2Mount()
	if err != nil {
		return nil
	}
	var dirs []string
	for _, p := range patterns {
		levels := strings.Split(strings.Trim(p, "/"), "/")
		for i := range levels {
			m, _ := filepath.Glob(filepath.Join(append([]string{root}, levels[:i]...)...))
			dirs = append(dirs, slices.DeleteFunc(m, func(d string) bool { return !isDir(d) })...)
		}
	}
	slices.Sort(dirs)
	return slices.Compact(dirs)
}

// podsDiff says in words how the matched cgroups changed, or "".
func podsDiff(old, cur []podCgroup) string {
	var added, gone []string
	for _, p := range cur {
		if !slices.Contains(old, p) {
			added = append(added, p.path)
		}
	}
	for _, p := range old {
		if !slices.Contains(cur, p) {
			gone = append(gone, p.path)
		}
	}
	if len(added)+len(gone) == 0 {
		return ""
	}
	return fmt.Sprintf("pod cgroups added %v, gone %v", added, gone)
}

// podPatternsLocked are the patterns held now: Config.PodCgroups and
// the PodSource's last answer.
func (l *Lockdown) podPatternsLocked() []string {
	return append(slices.Clone(l.cfg.PodCgroups), l.pod.sourced...)
}

// syncPodsLocked matches the pod patterns again and, when the matches
// changed (or the last attempt failed), re-applies the tables with them.
// It returns the change in words ("" when none).
func (l *Lockdown) syncPodsLocked() (string, error) {
	cur, err := findPods(l.podPatternsLocked())
	if err != nil {
		l.pod.failed = true
		return "", err
	}
	diff := podsDiff(l.dyn.pods, cur)
	if diff == "" && !l.pod.failed {
		return "", nil
	}
	prev := l.dyn.pods
	l.dyn.pods = cur
	if err := l.installLocked(); err != nil {
		l.dyn.pods, l.pod.failed = prev, true
		return "", err
	}
	l.pod.failed = false
	return cmp.Or(diff, "pod cgroups held again"), nil
}

// podOutput holds each matched pod cgroup to loopback and the pods'
// declared destinations (PodAllow, PodAllowPorts), first in the output
// chain: even replies may not leave otherwise.
func (p *plan) podOutput() []rule {
	var out []rule
	notLo, notLoWord := p.lo(false, true), p.loWord(false, true)
	for _, pod := range p.pods {
		level := cgroupLevel(pod.path)
		cg := cgroupv2(level, pod.id)
		who := fmt.Sprintf("socket cgroupv2 level %d %s", level, pod.path)
		for _, pfx := range p.cfg.PodAllow {
			ip, _ := ipWord(pfx.Addr().Is6())
			out = append(out, accept(fmt.Sprintf("%s %s daddr %s accept: a pod's declared destination", who, ip, pfx.Masked()), cg, addrPrefix(pfx.Masked(), false)))
		}
		for _, ap := range p.cfg.PodAllowPorts {
			a := ap.Addr().Unmap()
			ip, _ := ipWord(a.Is6())
			for _, proto := range []byte{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
				out = append(out, accept(fmt.Sprintf("%s %s daddr %s %s dport %d accept: a pod's declared destination", who, ip, a, protoWord(proto), ap.Port()),
					cg, addrPrefix(netip.PrefixFrom(a, a.BitLen()), false), l4proto(proto), dport(ap.Port())))
			}
		}
		out = append(out, toDrop(CatService, fmt.Sprintf("%s %s: an inference pod may use loopback only", who, notLoWord), cg, notLo))
	}
	return out
}

// podNames lists the matched pod cgroups, for the log.
func podNames(pods []podCgroup) []string {
	out := make([]string, len(pods))
	for i, p := range pods {
		out[i] = p.path
	}
	return out
}

// Pods lists the cgroups the pod scope holds now (the pod patterns'
// matches as last applied), by path relative to the cgroup2 mount.
func (l *Lockdown) Pods() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return podNames(l.dyn.pods)
}

func isDir(path string) bool {
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR
}
