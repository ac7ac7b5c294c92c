package node

import (
	"maps"
	"slices"
	"strings"
	"sync"
)

// Sources of a model stop: each part of the node that may stop a model
// does so under its own name, so that one clearing its reason does not
// serve a model another part still holds.
const (
	stopIntegrity = "integrity" // its weights file failed its check
	stopUpstream  = "upstream"  // its server listens beyond loopback
	stopLockdown  = "lockdown"  // the lockdown is not in force
)

// stops merges the reasons the node's parts have to stop each model and
// drives the guard: a model is served only while no part holds it, and
// its 503 names every reason.
type stops struct {
	g modelSwitch

	mu  sync.Mutex
	why map[string]map[string]string // model → source → reason
}

func newStops(g modelSwitch) *stops {
	return &stops{g: g, why: map[string]map[string]string{}}
}

// set makes source hold model with reason, or release it when reason is
// empty.
func (s *stops) set(source, model, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.why[model]
	if m == nil {
		m = map[string]string{}
		s.why[model] = m
	}
	if m[source] == reason {
		return
	}
	if reason == "" {
		delete(m, source)
	} else {
		m[source] = reason
	}
	if len(m) == 0 {
		s.g.SetModelAvailable(model)
		return
	}
	var reasons []string
	for _, src := range slices.Sorted(maps.Keys(m)) {
		reasons = append(reasons, m[src])
	}
	s.g.SetModelUnavailable(model, strings.Join(reasons, "; "))
}

// from is the modelSwitch of one source.
func (s *stops) from(source string) modelSwitch { return sourceSwitch{s, source} }

type sourceSwitch struct {
	s      *stops
	source string
}

func (w sourceSwitch) SetModelUnavailable(name, reason string) { w.s.set(w.source, name, reason) }
func (w sourceSwitch) SetModelAvailable(name string)           { w.s.set(w.source, name, "") }
