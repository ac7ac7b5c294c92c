package audit

import (
	"sync"
	"sync/atomic"
	"time"
)

// Sink takes records one at a time; *Spool is one.
type Sink interface {
	Append(rec *Record) error
}

// batchSink is the optional ability of a Sink to write many records at
// once (*Spool: one write, and one fsync when Options.Sync is set).
type batchSink interface {
	AppendBatch(recs []*Record) error
}

// QueueOptions configure a Queue. Zero fields take the defaults named.
type QueueOptions struct {
	// Size bounds the records waiting to be written. Default 4096.
	Size int
	// Wait is how long Append waits for room in a full queue before it
	// writes the record itself, synchronously. Default 5ms.
	Wait time.Duration
	// OnError receives write errors of the background writer (the record
	// is then lost; the spool's disk is failing). Nil: ignored.
	OnError func(err error, lost int)
}

// Queue makes appends asynchronous: Append hands the record to a bounded
// queue, and one writer goroutine writes what has gathered in batches.
// A record is on disk (and past the spool's fsync policy, Options.Sync)
// shortly after Append returns, not when it returns: a crash of the
// process can lose the records still queued, at most one batch. Nothing
// is dropped otherwise: when the queue is full Append waits up to
// QueueOptions.Wait and then writes the record itself (counted by
// Overflows), and Close writes everything still queued.
type Queue struct {
	sink      Sink
	opts      QueueOptions
	ch        chan *Record
	done      chan struct{}
	overflows atomic.Int64
	mu        sync.RWMutex // held for reading while sending on ch; Close takes it for writing
	closed    bool
}

// NewQueue starts a queue in front of sink. Close it to stop its writer.
func NewQueue(sink Sink, opts QueueOptions) *Queue {
	if opts.Size <= 0 {
		opts.Size = 4096
	}
	if opts.Wait <= 0 {
		opts.Wait = 5 * time.Millisecond
	}
	q := &Queue{sink: sink, opts: opts, ch: make(chan *Record, opts.Size), done: make(chan struct{})}
	go q.run()
	return q
}

// Append queues rec. It returns an error only when the queue is closed or
// full and the synchronous write failed.
func (q *Queue) Append(rec *Record) error {
	q.mu.RLock()
	if q.closed {
		q.mu.RUnlock()
		return q.sink.Append(rec)
	}
	select {
	case q.ch <- rec:
		q.mu.RUnlock()
		return nil
	default:
	}
	t := time.NewTimer(q.opts.Wait)
	defer t.Stop()
	select {
	case q.ch <- rec:
		q.mu.RUnlock()
		return nil
	case <-t.C:
	}
	q.mu.RUnlock()
	q.overflows.Add(1)
	return q.sink.Append(rec)
}

// Overflows returns how many records found the queue full and were
// written synchronously.
func (q *Queue) Overflows() int64 { return q.overflows.Load() }

// Close writes every queued record and stops the writer. Later Appends
// write synchronously.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	close(q.ch)
	q.mu.Unlock()
	<-q.done
	return nil
}

// run writes batches until the channel is closed and drained.
func (q *Queue) run() {
	defer close(q.done)
	batch := make([]*Record, 0, 256)
	for rec := range q.ch {
		batch = append(batch[:0], rec)
	gather:
		for len(batch) < cap(batch) {
			select {
			case r, ok := <-q.ch:
				if !ok {
					break gather
				}
				batch = append(batch, r)
			default:
				break gather
			}
		}
		q.write(batch)
		clear(batch)
	}
}

func (q *Queue) write(batch []*Record) {
	var err error
	if b, ok := q.sink.(batchSink); ok {
		err = b.AppendBatch(batch)
	} else {
		for _, r := range batch {
			if e := q.sink.Append(r); e != nil && err == nil {
				err = e
			}
		}
	}
	if err != nil && q.opts.OnError != nil {
		q.opts.OnError(err, len(batch))
	}
}
