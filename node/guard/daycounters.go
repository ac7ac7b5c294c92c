package guard

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// CounterStore keeps the guard's day counters between runs (the node
// keeps them in a file of its state directory).
type CounterStore interface {
	// Load returns what Save stored last; nil when nothing yet.
	Load() ([]byte, error)
	// Save replaces what is stored atomically: after a crash Load
	// returns the old data or the new, never a part.
	Save(data []byte) error
}

// The local limiter's day counters are kept in Config.Counters so that
// a restarted node does not forget the tokens already used today. They
// are rewritten (atomically, by the CounterStore) at most once per
// limitsSaveEvery while counters change, and once more when the guard
// stops: a crash loses at most that interval's counts, a clean stop
// none. Only today's counters are written, at most maxDayEntries of
// them, so what is kept stays bounded by the node's callers and grants.
const (
	limitsSaveEvery  = time.Second
	maxDayEntries    = 1 << 16
	maxCountersBytes = 16 << 20
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

// readCounters reads the day counters kept in cs; none when it holds
// nothing yet. Damaged or oversized data is an error: starting with no
// counts would hand out the day's quota again.
func readCounters(cs CounterStore) ([]dayEntry, error) {
	b, err := cs.Load()
	if err != nil {
		return nil, fmt.Errorf("guard: day counters: %w", err)
	}
	if b == nil {
		return nil, nil
	}
	if len(b) > maxCountersBytes {
		return nil, fmt.Errorf("guard: the kept day counters are larger than %d bytes; remove them to start the day's counts afresh", maxCountersBytes)
	}
	var f limitsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("guard: the kept day counters are damaged (%v); remove them to start the day's counts afresh", err)
	}
	return f.Days, nil
}

// dayKeeper saves the local limiter's day counters while they change.
type dayKeeper struct {
	cs    CounterStore
	l     *localLimiter
	now   func() time.Time
	log   *slog.Logger
	saved uint64 // the change count last written
	stop  chan struct{}
	done  chan struct{}
}

// startDayKeeper loads cs into l and keeps it up to date until stop.
func startDayKeeper(cs CounterStore, l *localLimiter, now func() time.Time, log *slog.Logger) (*dayKeeper, error) {
	days, err := readCounters(cs)
	if err != nil {
		return nil, err
	}
	l.loadDays(days, now())
	k := &dayKeeper{cs: cs, l: l, now: now, log: log, saved: l.changes, stop: make(chan struct{}), done: make(chan struct{})}
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
		err = k.cs.Save(b)
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
