package idp

import (
	"errors"
	"sync"
	"time"
)

// Lifetimes and caps of the in-memory protocol state.
const (
	requestTTL  = 15 * time.Minute // to finish signing in
	codeTTL     = time.Minute      // to exchange a code
	tokenTTL    = 15 * time.Minute // access tokens (userinfo only)
	maxRequests = 10_000           // sign-ins in progress
	maxTokens   = 10_000           // live access tokens
	sweepEvery  = time.Minute
)

var (
	errBusy       = errors.New("too many sign-ins in progress; try again in a few minutes")
	errExpired    = errors.New("this sign-in has expired or is unknown; go back to the application and start again")
	errCodeIssued = errors.New("this sign-in already returned to the application; start again")
)

// memory holds sign-ins in progress, authorization codes and access tokens.
// It hands out copies; changes go through update.
type memory struct {
	mu        sync.Mutex
	requests  map[string]*authRequest
	codes     map[string]codeEntry
	tokens    map[string]accessToken
	lastSweep time.Time
}

type codeEntry struct {
	requestID string
	expires   time.Time
}

func newMemory() *memory {
	return &memory{
		requests: map[string]*authRequest{},
		codes:    map[string]codeEntry{},
		tokens:   map[string]accessToken{},
	}
}

func (m *memory) addRequest(a *authRequest, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now, len(m.requests) >= maxRequests)
	if len(m.requests) >= maxRequests {
		return errBusy
	}
	m.requests[a.id] = a.clone()
	return nil
}

// request returns a copy of the live request id.
func (m *memory) request(id string, now time.Time) (*authRequest, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.liveLocked(id, now)
	if a == nil {
		return nil, false
	}
	return a.clone(), true
}

// update applies f to the live request id under the lock and returns a
// copy of the result; f's error leaves the request unchanged.
func (m *memory) update(id string, now time.Time, f func(*authRequest) error) (*authRequest, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.liveLocked(id, now)
	if a == nil {
		return nil, errExpired
	}
	c := a.clone()
	if err := f(c); err != nil {
		return nil, err
	}
	m.requests[id] = c
	return c.clone(), nil
}

func (m *memory) liveLocked(id string, now time.Time) *authRequest {
	a := m.requests[id]
	if a == nil || !now.Before(a.expires) {
		delete(m.requests, id)
		return nil
	}
	return a
}

func (m *memory) deleteRequest(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.requests, id)
}

// saveCode records the one code of a finished sign-in.
func (m *memory) saveCode(requestID, code string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.liveLocked(requestID, now)
	switch {
	case a == nil:
		return errExpired
	case !a.done || a.coded:
		return errCodeIssued
	}
	a.coded = true
	m.codes[code] = codeEntry{requestID: requestID, expires: now.Add(codeTTL)}
	return nil
}

// takeCode spends code: it works once, within codeTTL, for a finished
// sign-in.
func (m *memory) takeCode(code string, now time.Time) (*authRequest, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.codes[code]
	delete(m.codes, code)
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	a := m.liveLocked(e.requestID, now)
	if a == nil || !a.done {
		return nil, false
	}
	return a.clone(), true
}

func (m *memory) addToken(id string, t accessToken, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(now, len(m.tokens) >= maxTokens)
	if len(m.tokens) >= maxTokens {
		return errBusy
	}
	m.tokens[id] = t
	return nil
}

func (m *memory) token(id string, now time.Time) (accessToken, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tokens[id]
	if !ok || !now.Before(t.expires) {
		delete(m.tokens, id)
		return accessToken{}, false
	}
	return t, true
}

func (m *memory) deleteToken(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.tokens, id)
}

func (m *memory) clear() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.requests)
	clear(m.codes)
	clear(m.tokens)
}

// sweepLocked drops expired entries, at most once per sweepEvery unless
// forced (when a map is full).
func (m *memory) sweepLocked(now time.Time, force bool) {
	if !force && now.Sub(m.lastSweep) < sweepEvery {
		return
	}
	m.lastSweep = now
	for id, a := range m.requests {
		if !now.Before(a.expires) {
			delete(m.requests, id)
		}
	}
	for c, e := range m.codes {
		if !now.Before(e.expires) {
			delete(m.codes, c)
		}
	}
	for id, t := range m.tokens {
		if !now.Before(t.expires) {
			delete(m.tokens, id)
		}
	}
}
