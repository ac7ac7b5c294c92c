package coordinator

import (
	"time"

	"github.com/moatmesh/moat/coordinator/auditsink"
	"github.com/moatmesh/moat/coordinator/store"
)

// AuditSink is one destination the coordinator pushes audit records and
// the admin trail to (auditsink).
type AuditSink struct {
	// Name keys the sink's cursor in the store and its metrics; keep it
	// stable, or the sink starts again from the first record.
	Name string
	Sink auditsink.Sink
	// Filter picks what it carries; the zero Filter carries nothing.
	Filter auditsink.Filter
	// Prompts lets stored prompts leave with their records; false (the
	// default) removes them.
	Prompts bool
}

// sinkLeaderRetry is how often a replica that does not push a sink tries
// to take it over.
const sinkLeaderRetry = 5 * time.Second

// auditSinks are the running sinks with their leader claims.
type auditSinks struct {
	runners []*auditsink.Runner
	leaders []*store.Leader
}

// startSinks starts cfg.AuditSinks, each pushing while this replica holds
// its claim ("audit-sink:<name>").
func (s *Server) startSinks() auditSinks {
	var out auditSinks
	if len(s.cfg.AuditSinks) == 0 {
		return out
	}
	mx := auditsink.NewMetrics(s.mx.reg)
	for _, c := range s.cfg.AuditSinks {
		l := s.store.Leader("audit-sink:"+c.Name, sinkLeaderRetry)
		out.leaders = append(out.leaders, l)
		out.runners = append(out.runners, auditsink.Start(auditsink.Config{
			Name: c.Name, Sink: c.Sink, Filter: c.Filter, Prompts: c.Prompts, Leader: l,
			Metrics: mx, Log: s.log.With("sink", c.Name),
		}, s.store))
	}
	return out
}

// close stops the sinks, then gives their claims up.
func (a auditSinks) close() {
	for _, r := range a.runners {
		r.Close()
	}
	for _, l := range a.leaders {
		l.Close()
	}
}
