package guard

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	meshmember "github.com/moatmesh/moat/mesh/member"
)

// The local limiter's day counters are kept in Config.LimitsFile so that
// a restarted node does not forget the tokens already used today. The
// file is rewritten atomically (meshmember.WriteFile) at most once per
// limitsSaveEvery while counters change, and once more when the guard
// stops: a crash loses at most that interval's counts, a clean stop
// none. Only today's counters are written, at most maxDayEntries of
// them, so the file stays bounded by the node's callers and grants.
const (
	limitsSaveEvery = time.Second
	maxDayEntries   = 1 << 16
	maxLimitsFile   = 16 << 20
)

// dayEntry is one (identity, grant)'s token count for a UTC day. Tokens
// include the reservations of requests in flight when it was written: a
// request cut by a crash stays charged at its worst case.
type dayEntry struct {
	Who    string `json:"who"`
	Grant  string `json:"grant"`
	Day    int64  `json:"day"`
	Tokens int64  `json:"tokens"`
}

type limitsFile struct {
	Days []dayEntry `json:"days"`
}

// days returns the counters of the UTC day of now that counted tokens,
// and the limiter's change count they reflect.
func (l *localLimiter) days(now time.Time) ([]dayEntry, uint64) {
	today := now.UTC().Unix() / 86400
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []dayEntry
	for k, st := range l.states {
		if st.day == today && st.dayTokens > 0 && len(out) < maxDayEntries {
			out = append(out, dayEntry{Who: k.who, Grant: k.grant, Day: st.day, Tokens: st.dayTokens})
		}
	}
	return out, l.changes
}

// loadDays restores the counters of the UTC day of now; older ones are
// over and dropped.
func (l *localLimiter) loadDays(days []dayEntry, now time.Time) {
	today := now.UTC().Unix() / 86400
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, d := range days {
		if d.Day == today && d.Tokens > 0 {
			st := l.stateLocked(d.Who, d.Grant)
			st.day, st.dayTokens = d.Day, d.Tokens
		}
	}
}

// readLimitsFile reads the day counters kept at path; none when it does
// not exist yet. A damaged or oversized file is an error: starting with
// no counts would hand out the day's quota again.
func readLimitsFile(path string) ([]dayEntry, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("guard: limits file: %w", err)
	}
	if len(b) > maxLimitsFile {
		return nil, fmt.Errorf("guard: limits file %s is larger than %d bytes; remove it to start the day's counts afresh", path, maxLimitsFile)
	}
	var f limitsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("guard: limits file %s is damaged (%v); remove it to start the day's counts afresh", path, err)
	}
	return f.Days, nil
}

// dayKeeper writes the local limiter's day counters to the limits file
// while they change.
type dayKeeper struct {
	path  string
	l     *localLimiter
	now   func() time.Time
	log   *slog.Logger
	saved uint64 // the change count last written
	stop  chan struct{}
	done  chan struct{}
}

// startDayKeeper loads path into l and keeps it up to date until stop.
func startDayKeeper(path string, l *localLimiter, now func() time.Time, log *slog.Logger) (*dayKeeper, error) {
	days, err := readLimitsFile(path)
	if err != nil {
		return nil, err
	}
	l.loadDays(days, now())
	k := &dayKeeper{path: path, l: l, now: now, log: log, saved: l.changes, stop: make(chan struct{}), done: make(chan struct{})}
	go k.run()
	return k, nil
}

func (k *dayKeeper) run() {
	defer close(k.done)
	t := time.NewTicker(limitsSaveEvery)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			if err := k.save(false); err != nil {
				k.log.Error("day counters not saved", "err", err)
			}
		}
	}
}

// save writes the counters when they changed since the last write (or
// always, with force).
func (k *dayKeeper) save(force bool) error {
	days, changes := k.l.days(k.now())
	if changes == k.saved && !force {
		return nil
	}
	b, err := json.Marshal(limitsFile{Days: days})
	if err == nil {
		err = meshmember.WriteFile(k.path, b)
	}
	if err != nil {
		return fmt.Errorf("guard: save limits: %w", err)
	}
	k.saved = changes
	return nil
}

// close stops the keeper and writes the counters a last time.
func (k *dayKeeper) close() error {
	select {
	case <-k.stop:
		return nil
	default:
	}
	close(k.stop)
	<-k.done
	return k.save(true)
}
