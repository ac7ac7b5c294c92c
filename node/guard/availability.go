package guard

import (
	"fmt"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
)

// DecisionUnavailable is the audit decision of a request refused because
// its model is stopped on this node (SetModelUnavailable), e.g. after its
// weights file failed an integrity check.
const DecisionUnavailable = "unavailable"

// reasonUnavailable is the refusal reason of such a request.
const reasonUnavailable = "model_unavailable"

// availability is the set of served models stopped at run time, with the
// reason of each. Readers take one atomic load; writers copy the map under
// mu, so the request path never locks.
type availability struct {
	mu   sync.Mutex
	down atomic.Pointer[map[string]string] // nil: every model is available
}

// load returns the stopped models and their reasons; nil when none.
func (a *availability) load() map[string]string {
	if p := a.down.Load(); p != nil {
		return *p
	}
	return nil
}

func (a *availability) set(name, reason string, down bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	cur := a.load()
	if old, ok := cur[name]; ok == down && (!down || old == reason) {
		return
	}
	next := maps.Clone(cur)
	if next == nil {
		next = make(map[string]string)
	}
	if down {
		next[name] = reason
	} else {
		delete(next, name)
	}
	if len(next) == 0 {
		a.down.Store(nil)
		return
	}
	a.down.Store(&next)
}

// SetModelUnavailable stops serving model name until SetModelAvailable:
// its requests are answered 503 in the API's error shape, saying
// `model "name" is stopped on this node: ` and reason (which should say
// what is wrong and what to do, e.g. "weights file /models/x.gguf does not
// match its pinned sha256; an admin must check the node"), and recorded in
// the audit trail with decision DecisionUnavailable; /v1/models and
// /api/tags leave it out. Requests already forwarded finish. Calling it
// again replaces the reason. Safe for concurrent use.
func (g *Guard) SetModelUnavailable(name, reason string) {
	g.avail.set(name, reason, true)
}

// SetModelAvailable serves model name again after SetModelUnavailable.
// Safe for concurrent use.
func (g *Guard) SetModelAvailable(name string) {
	g.avail.set(name, "", false)
}

// unavailable refuses the call with 503 when its model is stopped.
func (c *call) unavailable() bool {
	reason, down := c.g.avail.load()[c.model]
	if !down {
		return false
	}
	c.refuse(http.StatusServiceUnavailable, reasonUnavailable, fmt.Sprintf("model %q is stopped on this node: %s", c.model, reason), 0)
	return true
}
