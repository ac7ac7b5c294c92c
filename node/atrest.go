package node

import (
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/atrest"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/guard"
)

// stopAtRest holds a model the policy wants on encrypted storage while its
// data is not.
const stopAtRest = "atrest"

// apiAtRest is the API of the audit events the at-rest check writes when
// it stops a model and when it serves it again.
const apiAtRest = "node.atrest"

// atRest looks at where the node's data sits (its state directory, its
// audit spool, each model's weights file) and stops the models whose
// policy entry sets encryptedAtRest while any of theirs is not on
// encrypted storage. It is a member.Sink: every netmap carries the
// requirement.
type atRest struct {
	check  func(path string) wire.Storage
	state  string
	spool  string
	models []Model
	stops  modelSwitch
	audit  guard.AuditSink // nil: no event records
	log    *slog.Logger
	node   string
	nodeID string
	now    func() time.Time

	mu       sync.Mutex
	status   wire.AtRestStatus
	required map[string]bool   // model → the policy requires encryption
	held     map[string]string // model → why it is stopped now
}

func newAtRest(state, spool string, models []Model, stops modelSwitch, sink guard.AuditSink, log *slog.Logger, node, nodeID string) *atRest {
	a := &atRest{check: atrest.Checker{}.Check, state: state, spool: spool, models: models, stops: stops, audit: sink,
		log: log, node: node, nodeID: nodeID, now: time.Now, required: map[string]bool{}, held: map[string]string{}}
	a.refresh()
	return a
}

// refresh looks at every path again and applies the result.
func (a *atRest) refresh() {
	st := wire.AtRestStatus{State: a.check(a.state), Spool: a.check(a.spool), Models: map[string]wire.Storage{}, Checked: a.now().UTC()}
	for _, m := range a.models {
		if m.File == "" {
			st.Models[m.Name] = wire.Storage{Reason: "no weights file is configured for it; add file=PATH to its --model"}
			continue
		}
		st.Models[m.Name] = a.check(m.File)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status = st
	a.applyLocked()
}

// SetNetMap takes the models that must be on encrypted storage from the
// node's rules.
func (a *atRest) SetNetMap(nm *wire.NetMap) error {
	req := map[string]bool{}
	if nm.Rules != nil {
		for _, r := range nm.Rules.Models {
			if r.EncryptedAtRest {
				req[r.Model] = true
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.required = req
	a.applyLocked()
	return nil
}

// applyLocked stops or serves each model as its requirement and storage
// say, writing an audit event on each change.
func (a *atRest) applyLocked() {
	for _, m := range a.models {
		why := ""
		if a.required[m.Name] {
			why = a.problemLocked(m.Name)
		}
		if why == a.held[m.Name] {
			continue
		}
		prev := a.held[m.Name]
		if why == "" {
			delete(a.held, m.Name)
		} else {
			a.held[m.Name] = why
		}
		if why == "" {
			a.stops.SetModelAvailable(m.Name)
		} else {
			a.stops.SetModelUnavailable(m.Name, why)
		}
		switch {
		case why != "":
			a.log.Error("model stopped: the policy requires encrypted storage", "model", m.Name, "reason", why)
			a.event(m.Name, guard.DecisionUnavailable, why, 503)
		case prev != "":
			a.log.Info("model served again: its data is on encrypted storage or the policy no longer requires it", "model", m.Name)
			a.event(m.Name, decisionIntegrityOK, "its data is on encrypted storage or the policy no longer requires it", 200)
		}
	}
}

// problemLocked says which of a model's paths is not encrypted; "" when
// all are.
func (a *atRest) problemLocked(model string) string {
	for _, p := range []struct {
		what string
		s    wire.Storage
	}{{"weights file", a.status.Models[model]}, {"audit spool", a.status.Spool}, {"state directory", a.status.State}} {
		if !p.s.Encrypted {
			return fmt.Sprintf("the policy requires it on encrypted storage (\"encryptedAtRest\") but its %s is not: %s", p.what, p.s.Reason)
		}
	}
	return ""
}

func (a *atRest) event(model, decision, reason string, status int) {
	if a.audit == nil {
		return
	}
	rec := &audit.Record{Time: a.now().UTC(), NodeID: a.nodeID, Node: a.node, Model: model, API: apiAtRest,
		Decision: decision, Reason: reason, Status: status}
	if err := a.audit.Append(rec); err != nil {
		a.log.Error("at-rest audit record lost", "model", model, "err", err)
	}
}

// snapshot returns what the last look found, for the node status.
func (a *atRest) snapshot() *wire.AtRestStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := a.status
	st.Models = maps.Clone(st.Models)
	return &st
}
