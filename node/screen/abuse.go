package screen

import (
	"container/list"
	"sync"
	"time"
)

// AbuseKind names what the abuse tracker saw.
type AbuseKind int

const (
	// AbuseBurst: far more requests in a window than the identity's own
	// moving baseline.
	AbuseBurst AbuseKind = iota + 1
	// AbuseNearDuplicates: many near-identical or systematically varied
	// prompts in a window (extraction by probing).
	AbuseNearDuplicates
	// AbuseLogprobs: many requests for logprobs/top_logprobs in a window
	// (distillation).
	AbuseLogprobs
)

// String returns "burst", "near-duplicates" or "logprobs".
func (k AbuseKind) String() string {
	return [...]string{"unknown", "burst", "near-duplicates", "logprobs"}[min(int(k), 3)]
}

// AbuseEvent is raised once per kind, identity and window.
type AbuseEvent struct {
	Identity string
	Kind     AbuseKind
	Count    int     // requests of that kind in the window
	Baseline float64 // the identity's usual requests per window (bursts)
	At       time.Time
}

// AbuseConfig tunes a Tracker. Zero fields take the defaults named.
type AbuseConfig struct {
	MaxIdentities int           // identities tracked (least recently seen evicted); 0 = 10000
	Window        time.Duration // counting window; 0 = 1 minute
	BurstFactor   float64       // burst when count > factor × baseline; 0 = 5
	MinBurst      int           // and count ≥ this; 0 = 30
	SimilarBits   int           // SimHash distance counted as near-identical; 0 = 4
	NearDupCount  int           // near-identical prompts in a window to fire; 0 = 10
	LogprobsCount int           // logprobs requests in a window to fire; 0 = 50
	// Throttle is how long an identity is throttled after an event;
	// 0 means events are raised but nobody is throttled.
	Throttle time.Duration
	// OnEvent receives events, synchronously, without the tracker's lock
	// held. Nil means events are only returned in decisions.
	OnEvent func(AbuseEvent)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *AbuseConfig) defaults() {
	set := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	set(&c.MaxIdentities, 10000)
	set(&c.MinBurst, 30)
	set(&c.SimilarBits, 4)
	set(&c.NearDupCount, 10)
	set(&c.LogprobsCount, 50)
	if c.Window == 0 {
		c.Window = time.Minute
	}
	if c.BurstFactor == 0 {
		c.BurstFactor = 5
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Usage is what the tracker needs to know about one request.
type Usage struct {
	Identity    string
	Prompt      string // the prompt text (hashed, not kept)
	Logprobs    bool   // the request asked for logprobs
	TopLogprobs int    // top_logprobs asked for
}

// AbuseDecision is the tracker's answer for one request.
type AbuseDecision struct {
	Events   []AbuseEvent // raised by this request
	Throttle bool         // the identity is throttled now
	Until    time.Time    // until when
}

// Tracker watches per-identity usage for bursts, probing and
// distillation. It is safe for concurrent use, holds bounded memory and
// starts no goroutines.
type Tracker struct {
	cfg AbuseConfig
	mu  sync.Mutex // guards everything below
	ids map[string]*list.Element
	lru *list.List // of *identityState, most recent first
}

// NewTracker returns a tracker with cfg (zero fields take defaults).
func NewTracker(cfg AbuseConfig) *Tracker {
	cfg.defaults()
	return &Tracker{cfg: cfg, ids: map[string]*list.Element{}, lru: list.New()}
}

// historyLen is how many prompt hashes an identity keeps.
const historyLen = 64

type identityState struct {
	id        string
	start     time.Time // current window's start
	count     int
	logprobs  int
	similar   int
	baseline  float64 // EWMA of count per window
	fired     [4]bool // kinds raised in this window
	hashes    [historyLen]uint64
	hashAt    [historyLen]time.Time
	next      int
	throttled time.Time
}

// Observe records one request and returns the decision for it.
func (t *Tracker) Observe(u Usage) AbuseDecision {
	h := simHash(u.Prompt)
	t.mu.Lock()
	now := t.cfg.Now()
	s := t.stateLocked(u.Identity, now)
	s.roll(now, t.cfg.Window)
	s.count++
	if u.Logprobs || u.TopLogprobs > 0 {
		s.logprobs++
	}
	s.similar = s.similarLocked(h, now, t.cfg)
	var d AbuseDecision
	for _, ev := range s.checkLocked(now, &t.cfg) {
		d.Events = append(d.Events, ev)
		if t.cfg.Throttle > 0 {
			s.throttled = now.Add(t.cfg.Throttle)
		}
	}
	d.Throttle, d.Until = now.Before(s.throttled), s.throttled
	t.mu.Unlock()
	if t.cfg.OnEvent != nil {
		for _, ev := range d.Events {
			t.cfg.OnEvent(ev)
		}
	}
	return d
}

// Len returns how many identities are tracked.
func (t *Tracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}

func (t *Tracker) stateLocked(id string, now time.Time) *identityState {
	if e, ok := t.ids[id]; ok {
		t.lru.MoveToFront(e)
		return e.Value.(*identityState)
	}
	if t.lru.Len() >= t.cfg.MaxIdentities {
		old := t.lru.Back()
		t.lru.Remove(old)
		delete(t.ids, old.Value.(*identityState).id)
	}
	s := &identityState{id: id, start: now}
	t.ids[id] = t.lru.PushFront(s)
	return s
}

// roll starts a new window when the current one is over, folding its
// count into the baseline (and idle windows as zeros).
func (s *identityState) roll(now time.Time, w time.Duration) {
	for n := 0; now.Sub(s.start) >= w && n < 60; n++ {
		s.baseline = 0.8*s.baseline + 0.2*float64(s.count)
		s.start = s.start.Add(w)
		s.count, s.logprobs, s.fired = 0, 0, [4]bool{}
	}
	if now.Sub(s.start) >= w { // idle for long: start afresh from now
		s.start = now
	}
}

// similarLocked records h and counts earlier prompts within the window
// that are near-identical to it.
func (s *identityState) similarLocked(h uint64, now time.Time, cfg AbuseConfig) int {
	n := 0
	for i, x := range s.hashes {
		if !s.hashAt[i].IsZero() && now.Sub(s.hashAt[i]) < cfg.Window && hamming(x, h) <= cfg.SimilarBits {
			n++
		}
	}
	s.hashes[s.next], s.hashAt[s.next] = h, now
	s.next = (s.next + 1) % historyLen
	return n
}

func (s *identityState) checkLocked(now time.Time, cfg *AbuseConfig) []AbuseEvent {
	var out []AbuseEvent
	raise := func(k AbuseKind, count int, cond bool) {
		if cond && !s.fired[k] {
			s.fired[k] = true
			out = append(out, AbuseEvent{Identity: s.id, Kind: k, Count: count, Baseline: s.baseline, At: now})
		}
	}
	raise(AbuseBurst, s.count, s.count >= cfg.MinBurst && float64(s.count) > cfg.BurstFactor*max(s.baseline, 1))
	raise(AbuseNearDuplicates, s.similar, s.similar >= cfg.NearDupCount)
	raise(AbuseLogprobs, s.logprobs, s.logprobs >= cfg.LogprobsCount)
	return out
}
