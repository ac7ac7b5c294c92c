package coordinator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/moatmesh/moat/coordinator/auditsink"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/auditchain"
)

// Retention: one replica at a time (the leader of "audit-retention")
// deletes the audit records whose retention has run out — their grant's
// audit.retention in the policy in force, else Config.AuditRetention —
// and keeps each node's chain verifiable across what it deleted with
// checkpoints (audit_cuts): for every run of deleted records, the hash
// the run chained to and the chain head at its end, sealed under the
// seal key (checkpoints.go). Only records that match their own hash and
// carry a chain position are deleted; a broken record stays, so the
// chain check keeps showing the break. A record an audit sink carrying
// records has not delivered yet stays until it has. Usage counters live
// apart (usage_day) and are never touched.

const (
	// retentionEvery is how often the leader applies retention.
	retentionEvery = time.Hour
	// retentionPage is how many expired candidates are read at a time.
	retentionPage = 1000
	// actionRetention is the admin-trail action of a retention run that
	// deleted records.
	actionRetention = "audit.retention"
	// actorRetention is who deletes: the coordinator itself.
	actorRetention = "coordinator:retention"
)

// retentionRules are how long records are kept: per grant id, else the
// default; 0 keeps them for ever.
type retentionRules struct {
	def    time.Duration
	grants map[string]time.Duration
}

// of is the retention of a record decided by grant.
func (r retentionRules) of(grant string) time.Duration {
	if d, ok := r.grants[grant]; ok && d > 0 {
		return d
	}
	return r.def
}

// shortest is the shortest retention that applies to any record; 0 when
// every record is kept for ever.
func (r retentionRules) shortest() time.Duration {
	short := r.def
	for _, d := range r.grants {
		if d > 0 && (short == 0 || d < short) {
			short = d
		}
	}
	return short
}

// retentionRules reads the rules from the policy in force. A record
// follows the grant that has its grant id in that policy.
func (s *Server) retentionRules(ctx context.Context) retentionRules {
	r := retentionRules{def: s.cfg.AuditRetention, grants: map[string]time.Duration{}}
	p := s.PolicyInForce(ctx)
	for i := range p.Grants {
		g := &p.Grants[i]
		r.grants[g.ID()] = time.Duration(g.Audit.Retention)
	}
	return r
}

// retentionRun is what one run of retention did.
type retentionRun struct {
	Deleted int // records deleted
	Kept    int // expired records kept because they are broken
	Waiting int // expired records kept until a sink delivers them
	Nodes   int // nodes whose records were deleted
}

// applyRetention deletes the records whose retention ran out before now,
// node by node, extending each node's checkpoints to cover them, and
// writes what it did to the admin trail.
func (s *Server) applyRetention(ctx context.Context) (retentionRun, error) {
	var run retentionRun
	now := s.cfg.Now()
	rules := s.retentionRules(ctx)
	short := rules.shortest()
	if short == 0 {
		return run, nil
	}
	delivered, err := s.deliveredRecords(ctx)
	if err != nil {
		return run, err
	}
	nodes := map[string]bool{}
	for after := int64(0); ; {
		recs, err := s.store.ExpiredAudit(ctx, now.Add(-short), after, retentionPage)
		if err != nil {
			return run, err
		}
		if len(recs) == 0 {
			break
		}
		after = recs[len(recs)-1].Seq
		recs = slices.DeleteFunc(recs, func(r *store.AuditRecord) bool {
			waits := r.Seq > delivered
			if waits {
				run.Waiting++
			}
			return waits
		})
		for node, exp := range s.expiredByNode(ctx, recs, rules, now, &run) {
			if err := s.cutNode(ctx, node, exp, now); err != nil {
				return run, err
			}
			run.Deleted += len(exp.ids)
			nodes[node] = true
		}
	}
	run.Nodes = len(nodes)
	if run.Deleted > 0 {
		detail := fmt.Sprintf("%d records of %d nodes deleted (retention: %s by default), the chains checkpointed", run.Deleted, run.Nodes, orForever(rules.def))
		s.recordAs(ctx, actorRetention, actionRetention, "audit", detail)
	}
	return run, nil
}

// deliveredRecords is the ingestion seq up to which every sink that
// carries records has delivered them (math.MaxInt64 with none).
func (s *Server) deliveredRecords(ctx context.Context) (int64, error) {
	upTo := int64(math.MaxInt64)
	for _, c := range s.cfg.AuditSinks {
		if !c.Filter.Records && !c.Filter.Refusals {
			continue
		}
		seq, err := s.store.SinkCursor(ctx, c.Name, auditsink.StreamRecords)
		if err != nil {
			return 0, err
		}
		upTo = min(upTo, seq)
	}
	return upTo, nil
}

// expired are one node's records to delete and their chain positions.
type expired struct {
	ids   []string
	spans []auditchain.Span
}

// expiredByNode picks from recs those whose retention ran out by now and
// that can be checkpointed: intact and with a chain position. It counts
// the others in run.Kept.
func (s *Server) expiredByNode(ctx context.Context, recs []*store.AuditRecord, rules retentionRules, now time.Time, run *retentionRun) map[string]*expired {
	out := map[string]*expired{}
	for _, r := range recs {
		d := rules.of(r.Grant)
		if d == 0 || !r.Time.Before(now.Add(-d)) {
			continue
		}
		link, err := s.openRecord(ctx, r)
		if err != nil || link.Seq == 0 {
			run.Kept++
			continue
		}
		e := out[r.NodeID]
		if e == nil {
			e = new(expired)
			out[r.NodeID] = e
		}
		e.ids = append(e.ids, r.ID)
		e.spans = append(e.spans, auditchain.SpanOf(link))
	}
	return out
}

// cutNode deletes exp's records of node and merges them into its sealed
// checkpoints. A checkpoint whose seal does not hold is left as it is,
// never merged (which would seal it anew).
func (s *Server) cutNode(ctx context.Context, node string, exp *expired, now time.Time) error {
	old, err := s.store.AuditCuts(ctx, node)
	if err != nil {
		return err
	}
	spans := exp.spans
	var replace []string
	for _, c := range old {
		if s.cutSealed(c) {
			spans = append(spans, cutSpan(c))
			replace = append(replace, c.ID)
		}
	}
	var cuts []*store.AuditCut
	for _, sp := range auditchain.Merge(spans) {
		cuts = append(cuts, s.sealCut(node, sp, now))
	}
	err = s.store.CutAudit(ctx, node, exp.ids, replace, cuts)
	if errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("retention for node %s: another replica changed its checkpoints; it runs again later: %w", node, err)
	}
	return err
}

// orForever is d, or "forever" when 0.
func orForever(d time.Duration) string {
	if d == 0 {
		return "forever"
	}
	return d.String()
}

// startRetention applies retention every retentionEvery while this
// replica leads "audit-retention". It runs on every replica, so that a
// retention a grant sets later is applied too; only the leader deletes.
func (s *Server) startRetention() *leaderJob {
	return s.startLeaderJob("audit-retention", retentionEvery, func(ctx context.Context) {
		sealed, purged, err := s.scrubPrompts(ctx)
		s.recordScrub(ctx, sealed, purged)
		if err != nil && ctx.Err() == nil {
			s.log.Error("audit prompt migration", "err", err)
		}
		if _, err := s.applyRetention(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("audit retention", "err", err)
		}
	})
}
