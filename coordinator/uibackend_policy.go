package coordinator

import (
	"context"
	"errors"
	"fmt"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/policy"
	"github.com/moatmesh/moat/ui"
)

// The policy editor's side of uiBackend. Saves and rollbacks go through
// savePolicyAs, as the admin API's do; checks through the policy
// package's Parse and RunTests, which together are policy.Check.

// maxHistoryScan bounds the versions read to find one page of history
// (the store pages by count only).
const maxHistoryScan = 1000

// Policy returns the policy in force, or the built-in one.
func (b uiBackend) Policy(ctx context.Context) (*ui.PolicyVersion, error) {
	pv, err := b.s.store.Policy(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return &ui.PolicyVersion{Text: builtinPolicy, Author: "moat"}, nil
	}
	if err != nil {
		return nil, b.fail("load policy", err)
	}
	return b.uiVersion(ctx, pv), nil
}

// PolicyVersion returns a saved version.
func (b uiBackend) PolicyVersion(ctx context.Context, id int64) (*ui.PolicyVersion, error) {
	pv, err := b.s.store.PolicyVersion(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("policy version %d: %w", id, ui.ErrNotFound)
	}
	if err != nil {
		return nil, b.fail("load policy version", err)
	}
	return b.uiVersion(ctx, pv), nil
}

// PolicyHistory returns up to n versions older than before, newest
// first. Version IDs increase with every save, so the versions older than
// before are within the newest (newest-before+n) ones.
func (b uiBackend) PolicyHistory(ctx context.Context, before int64, n int) ([]ui.PolicyVersion, error) {
	limit := n
	if before > 0 {
		cur, err := b.s.store.Policy(ctx)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, b.fail("load policy", err)
		}
		limit = int(min(max(cur.ID-before+1, 0), maxHistoryScan)) + n
	}
	vs, err := b.s.store.PolicyHistory(ctx, min(limit, maxHistoryScan))
	if err != nil {
		return nil, b.fail("load policy history", err)
	}
	names := b.people(ctx)
	var out []ui.PolicyVersion
	for _, pv := range vs {
		if (before == 0 || pv.ID < before) && len(out) < n {
			out = append(out, toUIVersion(pv, names))
		}
	}
	return out, nil
}

// CheckPolicy parses, validates and tests text.
func (b uiBackend) CheckPolicy(ctx context.Context, text string) (*ui.PolicyCheck, error) {
	if len(text) > policy.MaxSize {
		return nil, errPolicyTooLarge
	}
	return policyCheck(ctx, text)
}

// errPolicyTooLarge refuses a policy over policy.MaxSize in the UI.
var errPolicyTooLarge = &ui.UserError{Msg: "The policy is larger than 512 KiB."}

// SavePolicy saves text on behalf of actor as the admin API does.
func (b uiBackend) SavePolicy(ctx context.Context, actor *ui.Viewer, text, message string, base int64) (*ui.PolicyCheck, int64, error) {
	if len(text) > policy.MaxSize {
		return nil, 0, errPolicyTooLarge
	}
	if msg := ui.PolicyMessageProblem(message); msg != "" {
		return nil, 0, &ui.UserError{Msg: "Not saved: " + msg}
	}
	return b.save(ctx, actor, text, message, "policy.save", max(base, 0))
}

// RollbackPolicy saves version id again as the admin API's rollback does.
func (b uiBackend) RollbackPolicy(ctx context.Context, actor *ui.Viewer, id int64) (*ui.PolicyCheck, int64, error) {
	pv, err := b.s.store.PolicyVersion(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, 0, fmt.Errorf("policy version %d: %w", id, ui.ErrNotFound)
	}
	if err != nil {
		return nil, 0, b.fail("load policy version", err)
	}
	return b.save(ctx, actor, pv.Text, rollbackMessage(id), "policy.rollback", -1)
}

// save is the UI's way into savePolicyAs. A refused policy comes back
// checked in full, each assertion with its outcome.
func (b uiBackend) save(ctx context.Context, actor *ui.Viewer, text, message, action string, base int64) (*ui.PolicyCheck, int64, error) {
	pv, probs, err := b.s.savePolicyAs(ctx, actor.ID, text, message, action, base)
	switch {
	case errors.Is(err, store.ErrConflict):
		return nil, 0, fmt.Errorf("save policy over version %d: %w", base, ui.ErrConflict)
	case errors.Is(err, errPolicyBusy):
		return nil, 0, &ui.UserError{Msg: "Not saved: " + err.Error() + "."}
	case err != nil:
		return nil, 0, b.fail("save policy", err)
	case probs != nil:
		chk, err := policyCheck(ctx, text)
		return chk, 0, err
	}
	return &ui.PolicyCheck{}, pv.ID, nil
}

// policyCheck checks text in a policy-check slot (checkingPolicy) and
// reports every assertion with its outcome.
func policyCheck(ctx context.Context, text string) (*ui.PolicyCheck, error) {
	var chk *ui.PolicyCheck
	if err := checkingPolicy(ctx, func() { chk = checkPolicyText(text) }); err != nil {
		return nil, &ui.UserError{Msg: "Not checked: " + err.Error() + "."}
	}
	return chk, nil
}

// checkPolicyText parses text and runs its tests as policy.Check does,
// and reports every assertion with its outcome.
func checkPolicyText(text string) *ui.PolicyCheck {
	p, err := policy.Parse(policyFile, []byte(text))
	if err != nil {
		return &ui.PolicyCheck{Problems: policyProblems(err)}
	}
	failed := map[[2]int]string{}
	var other []ui.PolicyProblem
	for _, pr := range policyProblems(p.RunTests()) {
		if _, dup := failed[[2]int{pr.Line, pr.Col}]; dup || pr.Line == 0 {
			other = append(other, pr)
			continue
		}
		failed[[2]int{pr.Line, pr.Col}] = pr.Msg
	}
	c := &ui.PolicyCheck{Problems: other}
	for _, t := range p.Tests {
		for _, e := range []struct {
			expect  string
			targets []policy.Target
		}{{"accept", t.Accept}, {"deny", t.Deny}} {
			for _, tg := range e.targets {
				msg, bad := failed[[2]int{tg.Pos.Line, tg.Pos.Col}]
				delete(failed, [2]int{tg.Pos.Line, tg.Pos.Col})
				c.Assertions = append(c.Assertions, ui.PolicyAssertion{Line: tg.Pos.Line, Col: tg.Pos.Col,
					Who: t.Who.String(), Expect: e.expect, Target: tg.Text, Passed: !bad, Msg: msg})
			}
		}
	}
	for pos, msg := range failed { // failures at no assertion: shown as problems, never lost
		c.Problems = append(c.Problems, ui.PolicyProblem{Line: pos[0], Col: pos[1], Msg: msg})
	}
	return c
}

// policyProblems turns a policy error into positioned problems: the one
// conversion of policy errors, for the editor and (as policyProblem) the
// admin API.
func policyProblems(err error) []ui.PolicyProblem {
	if err == nil {
		return nil
	}
	var list policy.ErrorList
	if !errors.As(err, &list) {
		return []ui.PolicyProblem{{Msg: err.Error()}}
	}
	out := make([]ui.PolicyProblem, 0, len(list))
	for _, e := range list {
		out = append(out, ui.PolicyProblem{Line: e.Line, Col: e.Col, Msg: e.Msg})
	}
	return out
}

// uiVersion is pv for the UI, its author named.
func (b uiBackend) uiVersion(ctx context.Context, pv *store.PolicyVersion) *ui.PolicyVersion {
	v := toUIVersion(pv, b.people(ctx))
	return &v
}

func toUIVersion(pv *store.PolicyVersion, names map[string]string) ui.PolicyVersion {
	return ui.PolicyVersion{ID: pv.ID, Text: pv.Text, Author: actorName(pv.Author, names), Message: pv.Message, Created: pv.Created}
}

// people is emails (and API token names) by actor; on a store error the
// actors are shown as recorded.
func (b uiBackend) people(ctx context.Context) map[string]string {
	m, _ := b.emails(ctx)
	return m
}
