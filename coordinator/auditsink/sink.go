// Package auditsink pushes the coordinator's audit records and admin
// trail to outside systems (a SIEM's webhook, syslog over TLS), at least
// once and in order per stream. The store is the queue: a Runner reads what lies past
// its persisted cursor, hands it to its Sink, and moves the cursor only
// once the sink took it. A sink that is down loses nothing and holds up
// nothing but itself: records keep landing in the store, the runner
// retries with growing pauses, and its backlog and errors are metrics.
// Only the replica holding the sink's Leader claim pushes.
package auditsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// The two streams a sink may carry, each in its own order.
const (
	StreamRecords = "records" // audit records, by ingestion seq
	StreamAdmin   = "admin"   // the admin trail, by entry id
)

// Source is where a Runner reads events and keeps its cursors
// (store.DB).
type Source interface {
	AuditAfter(ctx context.Context, after int64, limit int) ([]*store.AuditRecord, error)
	AdminActionsAfter(ctx context.Context, after int64, limit int) ([]*store.AdminAction, error)
	AuditHeads(ctx context.Context) (records, actions int64, err error)
	SinkCursor(ctx context.Context, sink, stream string) (int64, error)
	// AdvanceSinkCursor moves a cursor only if it is still at from.
	AdvanceSinkCursor(ctx context.Context, sink, stream string, from, to int64) error
}

// Sink delivers a batch of events, in order. It returns nil only once
// the receiver has taken all of them; on an error the whole batch is sent
// again later (receivers deduplicate by Event.ID).
type Sink interface {
	Deliver(ctx context.Context, events []Event) error
}

// Leader says whether this replica may push now (store.Leader).
type Leader interface{ IsLeader() bool }

// Event is one audit record or admin trail entry as sinks send it.
type Event struct {
	// ID is stable across redeliveries: "record:<record id>" or
	// "admin:<entry id>".
	ID     string          `json:"id"`
	Stream string          `json:"stream"` // StreamRecords or StreamAdmin
	Seq    int64           `json:"seq"`    // position in its stream
	Time   time.Time       `json:"time"`   // when it happened
	Data   json.RawMessage `json:"data"`   // the node's record, or an adminEntry
}

// adminEntry is an admin trail entry as sinks send it.
type adminEntry struct {
	Action string `json:"action"`
	Actor  string `json:"actor"`
	Target string `json:"target,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Filter picks what a sink carries; the zero Filter carries nothing.
type Filter struct {
	Records  bool // every audit record
	Refusals bool // audit records not allowed, and refused admin credentials
	Admin    bool // the whole admin trail
}

// Config is one sink's runner.
type Config struct {
	Name   string // names its cursors and metrics, e.g. "webhook"
	Sink   Sink
	Filter Filter
	// Prompts lets records keep the prompt a grant stored ("full");
	// false (the default) removes it before sending.
	Prompts bool
	Leader  Leader
	// Batch is the most events read and sent at once; 0 means 100.
	Batch int
	// Interval is the pause between polls when caught up, and the first
	// pause after a failure (doubling up to MaxBackoff); 0 means 2 s.
	Interval time.Duration
	// MaxBackoff caps the pause after failures; 0 means 1 minute.
	MaxBackoff time.Duration
	Metrics    *Metrics
	Log        *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.Interval <= 0 {
		c.Interval = 2 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Minute
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(nil)
	}
}

// Runner pushes one sink's streams until Close.
type Runner struct {
	cfg  Config
	src  Source
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// Start starts pushing.
func Start(cfg Config, src Source) *Runner {
	cfg.setDefaults()
	ctx, stop := context.WithCancel(context.Background())
	r := &Runner{cfg: cfg, src: src, stop: stop}
	r.wg.Go(func() { r.run(ctx) })
	return r
}

// Close stops pushing, waits for a delivery in flight to end and closes
// the sink when it is an io.Closer (a held connection).
func (r *Runner) Close() {
	r.stop()
	r.wg.Wait()
	if c, ok := r.cfg.Sink.(io.Closer); ok {
		_ = c.Close()
	}
}

// run polls: at once again after a full batch, after Interval when caught
// up, after a growing pause when the sink failed.
func (r *Runner) run(ctx context.Context) {
	pause := r.cfg.Interval
	for ctx.Err() == nil {
		wait := r.cfg.Interval
		if r.cfg.Leader == nil || r.cfg.Leader.IsLeader() {
			more, err := r.round(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				r.cfg.Metrics.errors.WithLabelValues(r.cfg.Name).Inc()
				r.cfg.Log.Warn("audit sink", "sink", r.cfg.Name, "err", err, "retry_in", pause)
				wait, pause = pause, min(2*pause, r.cfg.MaxBackoff)
			case more:
				wait, pause = 0, r.cfg.Interval
			default:
				pause = r.cfg.Interval
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// round pushes one batch of each stream the sink carries and reports
// whether a stream had more.
func (r *Runner) round(ctx context.Context) (more bool, err error) {
	heads := map[string]int64{}
	heads[StreamRecords], heads[StreamAdmin], err = r.src.AuditHeads(ctx)
	if err != nil {
		return false, err
	}
	for _, stream := range r.streams() {
		m, err := r.push(ctx, stream, heads[stream])
		if err != nil {
			return false, fmt.Errorf("%s: %w", stream, err)
		}
		more = more || m
	}
	return more, nil
}

func (r *Runner) streams() []string {
	var out []string
	if f := r.cfg.Filter; f.Records || f.Refusals {
		out = append(out, StreamRecords)
	}
	if f := r.cfg.Filter; f.Admin || f.Refusals {
		out = append(out, StreamAdmin)
	}
	return out
}

// push sends the next batch of stream past its cursor and moves the
// cursor past everything read (also what the filter dropped).
func (r *Runner) push(ctx context.Context, stream string, head int64) (more bool, err error) {
	cursor, err := r.src.SinkCursor(ctx, r.cfg.Name, stream)
	if err != nil {
		return false, err
	}
	r.cfg.Metrics.backlog.WithLabelValues(r.cfg.Name, stream).Set(float64(max(head-cursor, 0)))
	evs, last, err := r.read(ctx, stream, cursor)
	if err != nil || last == cursor {
		return false, err
	}
	if len(evs) > 0 {
		if err := r.cfg.Sink.Deliver(ctx, evs); err != nil {
			return false, fmt.Errorf("deliver %d events after %d: %w", len(evs), cursor, err)
		}
	}
	if err := r.src.AdvanceSinkCursor(ctx, r.cfg.Name, stream, cursor, last); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return false, nil // another replica leads now; it resends from its cursor
		}
		return false, err
	}
	r.cfg.Metrics.delivered.WithLabelValues(r.cfg.Name, stream).Add(float64(len(evs)))
	r.cfg.Metrics.backlog.WithLabelValues(r.cfg.Name, stream).Set(float64(max(head-last, 0)))
	return true, nil
}
