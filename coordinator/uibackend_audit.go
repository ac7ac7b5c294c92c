package coordinator

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/auditchain"
	"github.com/moatmesh/moat/ui"
)

// The audit and admin-trail side of uiBackend.

const (
	// maxChainRecords bounds the records of one node read to check its
	// chain; beyond it only the newest are checked.
	maxChainRecords = 20000
	// maxChainProblems bounds the problems listed per node.
	maxChainProblems = 10
	// maxTrailScan bounds the admin actions read to find one page of the
	// trail (the store pages by count only).
	maxTrailScan = 10000
)

// Audit queries audit records. A person is a user id ("u_…") or a login
// (email); a node is a node's id or name.
func (b uiBackend) Audit(ctx context.Context, f ui.AuditFilter) ([]ui.AuditRecord, error) {
	names, err := b.nodeNames(ctx)
	if err != nil {
		return nil, err
	}
	sf := store.AuditFilter{Model: f.Model, API: f.API, NodeID: nodeID(f.Node, names), Decision: f.Decision,
		Since: f.Since, Until: f.Until, Before: f.Before, Limit: f.Limit}
	if strings.HasPrefix(f.Person, "u_") {
		sf.UserID = f.Person
	} else {
		sf.Login = f.Person
	}
	recs, err := b.s.store.Audit(ctx, sf)
	if errors.Is(err, store.ErrNotFound) && f.Before != "" {
		return nil, &ui.UserError{Msg: "The page asked for starts after a record that does not exist. Start again from the newest records."}
	}
	if err != nil {
		return nil, b.fail("query audit records", err)
	}
	out := make([]ui.AuditRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, toUIRecord(r, names))
	}
	return out, nil
}

// AuditRecord returns record id, checked against its own hash.
func (b uiBackend) AuditRecord(ctx context.Context, id string) (*ui.AuditRecord, error) {
	rec, err := b.s.store.AuditRecord(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("audit record %s: %w", id, ui.ErrNotFound)
	}
	if err != nil {
		return nil, b.fail("read audit record", err)
	}
	names, err := b.nodeNames(ctx)
	if err != nil {
		return nil, err
	}
	r := toUIRecord(rec, names)
	_, err = b.s.openRecord(ctx, rec)
	r.HashOK = err == nil
	return &r, nil
}

// AuditChains checks, for every node, the chain of the records held from
// it with the checks the node applies to its own spool, across the runs
// retention deleted (checkpoints.go).
func (b uiBackend) AuditChains(ctx context.Context) ([]ui.ChainState, error) {
	names, err := b.nodeNames(ctx)
	if err != nil {
		return nil, err
	}
	cuts, err := b.s.store.AuditCuts(ctx, "")
	if err != nil {
		return nil, b.fail("read audit checkpoints", err)
	}
	byNode := map[string][]*store.AuditCut{}
	for _, c := range cuts {
		byNode[c.NodeID] = append(byNode[c.NodeID], c)
	}
	var out []ui.ChainState
	for id, name := range names {
		recs, partial, err := b.nodeRecords(ctx, id)
		if err != nil {
			return nil, err
		}
		st := checkChain(b.s.chainOf(ctx, recs, byNode[id]), partial)
		st.NodeID, st.Node = id, name
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b ui.ChainState) int {
		return cmp.Or(cmp.Compare(a.Node, b.Node), cmp.Compare(a.NodeID, b.NodeID))
	})
	return out, nil
}

// nodeRecords reads the newest maxChainRecords records of node id, and
// whether there are more.
func (b uiBackend) nodeRecords(ctx context.Context, id string) ([]*store.AuditRecord, bool, error) {
	var all []*store.AuditRecord
	f := store.AuditFilter{NodeID: id, Limit: 10000}
	for len(all) < maxChainRecords {
		recs, err := b.s.store.Audit(ctx, f)
		if err != nil {
			return nil, false, b.fail("query audit records", err)
		}
		all = append(all, recs...)
		if len(recs) < f.Limit {
			return all, false, nil
		}
		f.Before = recs[len(recs)-1].ID
	}
	return all, true, nil
}

// chained is a record's place in its chain as the record claims it, or
// a checkpoint's run of deleted records (cut).
type chained struct {
	id     string
	link   auditchain.Link // the record, or the first record of a cut
	end    auditchain.Link // the record, or the last record of a cut
	cut    bool
	broken error // the record does not match its own hash; the cut is not sealed
}

// errUnsealed marks a checkpoint that does not carry the seal.
var errUnsealed = fmt.Errorf("%w: the checkpoint does not carry the coordinator's seal (forged or altered)", auditchain.ErrBroken)

// chainOf is one node's records and checkpoints as chain entries.
func (s *Server) chainOf(ctx context.Context, recs []*store.AuditRecord, cuts []*store.AuditCut) []chained {
	cs := make([]chained, 0, len(recs)+len(cuts))
	for _, r := range recs {
		var c struct {
			Seq        uint64 `json:"seq"`
			Prev, Hash string
		}
		_ = json.Unmarshal(r.Body, &c)
		_, err := s.openRecord(ctx, r) // a record the prompt migration rewrote keeps its hash
		l := auditchain.Link{Seq: c.Seq, Prev: c.Prev, Hash: c.Hash}
		cs = append(cs, chained{id: r.ID, link: l, end: l, broken: err})
	}
	for _, c := range cuts {
		sp := cutSpan(c)
		ch := chained{id: "checkpoint", link: sp.Start(), end: sp.End(), cut: true}
		if !s.cutSealed(c) {
			ch.broken = errUnsealed
		}
		cs = append(cs, ch)
	}
	return cs
}

// checkChain checks the entries of one node: each record matches its
// own hash and each checkpoint carries the seal, and each follows the one
// before it in sequence. Records are shipped in sequence but stamped with
// their request's start, so they are put in sequence first. When
// partial, the oldest records held were not read, and missing sequence
// numbers are not reported.
func checkChain(cs []chained, partial bool) ui.ChainState {
	slices.SortStableFunc(cs, func(a, b chained) int { return cmp.Compare(a.link.Seq, b.link.Seq) })
	st := ui.ChainState{Partial: partial}
	for _, c := range cs {
		if c.cut {
			st.Removed += c.end.Seq - c.link.Seq + 1
		} else {
			st.Records++
		}
	}
	if len(cs) == 0 {
		return st
	}
	st.First, st.Last = cs[0].link.Seq, cs[len(cs)-1].end.Seq
	var probs []string
	problem := func(c chained, err error) {
		why := strings.TrimPrefix(err.Error(), auditchain.ErrBroken.Error()+": ")
		probs = append(probs, fmt.Sprintf("break at record %d (%s): %s", c.link.Seq, c.id, why))
	}
	prev := auditchain.Link{} // the start of the chain
	for i, c := range cs {
		if c.broken != nil {
			problem(c, c.broken)
		}
		switch {
		case i > 0 && c.link.Seq <= prev.Seq:
			probs = append(probs, fmt.Sprintf("record %d is held twice, as %s and %s: the chain forked", c.link.Seq, cs[i-1].id, c.id))
		case c.link.Seq > prev.Seq+1 && (partial || c.link.Seq == 0):
			// not read (partial), or no sequence number: nothing to follow
		case c.link.Seq > prev.Seq+1:
			missing := fmt.Sprintf("records %d–%d are", prev.Seq+1, c.link.Seq-1)
			if c.link.Seq-1 == prev.Seq+1 {
				missing = fmt.Sprintf("record %d is", prev.Seq+1)
			}
			probs = append(probs, fmt.Sprintf("gap before record %d (%s): %s not held", c.link.Seq, c.id, missing))
		default:
			if err := auditchain.Follows(prev, c.link); err != nil {
				problem(c, err)
			}
		}
		prev = c.end
	}
	if len(probs) > maxChainProblems {
		probs = append(probs[:maxChainProblems], fmt.Sprintf("and %d more", len(probs)-maxChainProblems))
	}
	st.Problems = probs
	return st
}

// AdminTrail returns up to n admin actions older than before. Action IDs
// increase, so those older than before are within the newest
// (newest-before+n) ones.
func (b uiBackend) AdminTrail(ctx context.Context, before int64, n int) ([]ui.AdminAction, error) {
	limit := n
	if before > 0 {
		newest, err := b.s.store.AdminActions(ctx, 1)
		if err != nil {
			return nil, b.fail("list admin actions", err)
		}
		if len(newest) == 0 {
			return nil, nil
		}
		limit = int(min(max(newest[0].ID-before+1, 0), maxTrailScan)) + n
	}
	as, err := b.s.store.AdminActions(ctx, min(limit, maxTrailScan))
	if err != nil {
		return nil, b.fail("list admin actions", err)
	}
	names := b.people(ctx)
	var out []ui.AdminAction
	for _, a := range as {
		if (before == 0 || a.ID < before) && len(out) < n {
			out = append(out, ui.AdminAction{ID: a.ID, Time: a.Time, Actor: actorName(a.Actor, names),
				Action: a.Action, Target: a.Target, Detail: a.Detail})
		}
	}
	return out, nil
}

// nodeNames maps every node's id (revoked ones too) to its name.
func (b uiBackend) nodeNames(ctx context.Context) (map[string]string, error) {
	ds, err := b.s.store.Devices(ctx)
	if err != nil {
		return nil, b.fail("list devices", err)
	}
	m := map[string]string{}
	for _, d := range ds {
		if d.Kind == store.KindNode {
			m[d.ID] = d.Hostname
		}
	}
	return m, nil
}

// nodeID is the id of the node named s (an id or a name); s itself when
// no node has that name.
func nodeID(s string, names map[string]string) string {
	if _, ok := names[s]; ok || s == "" {
		return s
	}
	ids := make([]string, 0, len(names))
	for id, name := range names {
		if name == s {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return s
	}
	slices.Sort(ids) // the same one every time when names repeat
	return ids[0]
}

func toUIRecord(r *store.AuditRecord, names map[string]string) ui.AuditRecord {
	return ui.AuditRecord{ID: r.ID, NodeID: r.NodeID, Node: names[r.NodeID], Time: r.Time, UserID: r.UserID, Login: r.Login,
		DeviceID: r.DeviceID, Model: r.Model, API: r.API, Decision: r.Decision, Reason: r.Reason, Grant: r.Grant,
		TokensIn: r.TokensIn, TokensOut: r.TokensOut, LatencyMS: r.LatencyMS, Status: r.Status, Body: r.Body, MCP: mcpCallOf(r)}
}
