package lockdown

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/nftables"
)

// EventKind says what Watch saw.
type EventKind string

const (
	// EventLost: the tables were deleted, flushed (Debian's
	// nftables.service runs `flush ruleset` on every reload) or changed
	// by someone else. Healthy is false until EventRestored.
	EventLost EventKind = "lost"
	// EventRestored: the tables are back as applied; Took says how long
	// after the loss was seen.
	EventRestored EventKind = "restored"
	// EventInterfaces: interfaces were renamed, added or removed and
	// the tables were re-applied for them (loopback and the mesh
	// interface are matched by index; new devices get a packet filter).
	EventInterfaces EventKind = "interfaces"
	// EventFailed: re-applying failed; the lockdown is not in force and
	// Healthy is false. Watch keeps trying.
	EventFailed EventKind = "failed"
	// EventResolved: the coordinator's or the NTP servers' addresses
	// changed and the sets were updated.
	EventResolved EventKind = "resolved"
	// EventPods: cgroups matching Config.PodCgroups appeared or went
	// away and the tables were re-applied for them.
	EventPods EventKind = "pods"
)

// Event is one thing Watch saw and did.
type Event struct {
	Time   time.Time
	Kind   EventKind
	Reason string        // in words, for the log, the audit trail and the UI
	Took   time.Duration // for EventRestored: from detection to restored
}

type health struct {
	ok     bool
	reason string
	since  time.Time
}

// Healthy says whether the lockdown is in force as applied, as of the
// last check (Watch checks every WatchInterval and at once on every
// nftables change), and if not, why. The guard answers 503 with the
// reason while it is false.
func (l *Lockdown) Healthy() (bool, string) {
	h := l.health.Load()
	if h == nil {
		return false, "lockdown not applied"
	}
	return h.ok, h.reason
}

func (l *Lockdown) setUnhealthy(reason string, now time.Time) {
	l.health.Store(&health{reason: reason, since: now})
}

// Watch watches the tables and the interfaces until ctx ends, restores
// the lockdown at once when it is lost or interfaces change, holds new
// pod cgroups (Config.PodCgroups) as soon as they appear, resolves
// the configured names again every ResolveInterval, and calls report
// (from Watch's goroutine, which it blocks) for every event. Detection
// is immediate through nftables change notifications, and within
// WatchInterval by reading back otherwise. It returns when ctx ends.
func (l *Lockdown) Watch(ctx context.Context, report func(Event)) {
	poke := l.monitor(ctx)
	podPoke := make(chan struct{}, 1)
	var pods *podNotifier
	if len(l.cfg.PodCgroups) > 0 || l.cfg.PodSource != nil {
		pods = newPodNotifier(ctx, podPoke)
		l.usePodSource(ctx, podPoke)
	}
	tick := time.NewTicker(l.cfg.WatchInterval)
	defer tick.Stop()
	resolve := time.NewTicker(l.cfg.ResolveInterval)
	defer resolve.Stop()
	for {
		l.check(report)
		l.checkPods(report, pods)
		select {
		case <-ctx.Done():
			return
		case <-poke:
		case <-podPoke:
		case <-tick.C:
		case <-resolve.C:
			l.resolveAndReport(ctx, report)
		}
	}
}

func (l *Lockdown) resolveAndReport(ctx context.Context, report func(Event)) {
	changed, err := l.Resolve(ctx)
	switch {
	case err != nil:
		report(Event{Time: time.Now(), Kind: EventResolved, Reason: "names not resolved, keeping the last addresses: " + err.Error()})
	case changed:
		l.mu.Lock()
		reason := fmt.Sprintf("coordinator now %v, NTP servers now %v", l.dyn.coordinator, l.dyn.ntp)
		l.mu.Unlock()
		report(Event{Time: time.Now(), Kind: EventResolved, Reason: reason})
	}
}

// monitor returns a channel that receives a value soon after any
// nftables change in this namespace, or a nil channel (never ready) if
// notifications are not available; polling still works then.
func (l *Lockdown) monitor(ctx context.Context) <-chan struct{} {
	conn, err := nftables.New()
	if err != nil {
		return nil
	}
	mon := nftables.NewMonitor(nftables.WithMonitorObject(nftables.MonitorObjectRuleset))
	events, err := conn.AddMonitor(mon)
	if err != nil {
		return nil
	}
	poke := make(chan struct{}, 1)
	go func() {
		<-ctx.Done()
		mon.Close()
	}()
	go func() {
		for range events { // until Close closes it
			select {
			case poke <- struct{}{}:
			default:
			}
		}
	}()
	return poke
}

// Check compares the tables and the interfaces with what was applied
// and, if they differ, re-applies the lockdown at once. It returns what
// happened; nothing when all is as applied.
func (l *Lockdown) Check() []Event {
	var out []Event
	l.check(func(e Event) { out = append(out, e) })
	return out
}

// check is Check reporting as it goes: a loss is reported (and Healthy
// is false) before the tables are re-applied, so that a node holding its
// models on the loss refuses requests until the restore is reported.
// report is called without l.mu held.
func (l *Lockdown) check(report func(Event)) {
	l.mu.Lock()
	lost := l.lostLocked()
	now := time.Now() // when it was seen
	ifs, err := readIfaces(l.cfg.MeshInterface)
	changed := ""
	if err == nil && !ifs.equal(l.ifs) {
		changed = l.ifs.diff(ifs)
	}
	if lost != "" {
		l.setUnhealthy(lost, now)
	}
	l.mu.Unlock()
	if lost == "" && changed == "" {
		return
	}
	if lost != "" {
		report(Event{Time: now, Kind: EventLost, Reason: lost})
	}
	l.mu.Lock()
	err = l.installLocked()
	if err != nil {
		l.setUnhealthy("re-applying the lockdown failed: "+err.Error(), now)
	}
	l.mu.Unlock()
	switch {
	case err != nil:
		report(Event{Time: time.Now(), Kind: EventFailed, Reason: "re-applying the lockdown failed: " + err.Error()})
	case lost != "":
		report(Event{Time: time.Now(), Kind: EventRestored, Reason: "re-applied after: " + lost, Took: time.Since(now)})
	default:
		report(Event{Time: now, Kind: EventInterfaces, Reason: "re-applied for changed interfaces: " + changed})
	}
}

// lostLocked says how the tables differ from what was written, or "".
func (l *Lockdown) lostLocked() string {
	fp, err := fingerprint()
	switch {
	case errors.Is(err, ErrNotApplied):
		return "table inet " + TableName + " is missing (deleted, or the ruleset was flushed)"
	case err != nil:
		return "cannot read the lockdown back: " + strings.ReplaceAll(err.Error(), "\n", " ")
	case fp != l.fp:
		return "the lockdown's tables were changed by something else (rules, chains or set elements)"
	}
	return ""
}
