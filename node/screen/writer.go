package screen

import (
	"bytes"
	"fmt"
	"io"
)

// MaxEventSize bounds one upstream event (SSE) or line (NDJSON).
const MaxEventSize = 1 << 20

// EventFilter is what SSEFilter and NDJSONFilter have in common.
type EventFilter interface {
	// Event appends the screened form of one complete event to dst.
	Event(dst, ev []byte) ([]byte, error)
	// Close appends what is still held back to dst.
	Close(dst []byte) ([]byte, error)
	// Findings returns what fired so far.
	Findings() []Finding
}

// flusher is the optional ability of a downstream writer to push bytes to
// the client now (http.Flusher has it).
type flusher interface{ Flush() }

// EventWriter sits between the upstream body and the client: Write takes
// upstream bytes in any pieces, splits them into events, screens each one
// and writes it downstream, flushing after each event if the downstream
// writer can. It buffers at most one incomplete event (MaxEventSize).
type EventWriter struct {
	f   EventFilter
	w   io.Writer
	sep []byte // what ends an event: "\n\n" (SSE) or "\n" (NDJSON)
	buf []byte
	out []byte
	err error
}

// NewSSEWriter screens an OpenAI SSE stream into w.
func (s *Scanner) NewSSEWriter(w io.Writer) *EventWriter {
	return &EventWriter{f: s.NewSSEFilter(), w: w, sep: []byte("\n\n")}
}

// NewNDJSONWriter screens an Ollama NDJSON stream into w.
func (s *Scanner) NewNDJSONWriter(w io.Writer) *EventWriter {
	return &EventWriter{f: s.NewNDJSONFilter(), w: w, sep: []byte("\n")}
}

// Write screens the complete events in buf+p and keeps the incomplete
// rest. It returns the first error of the filter (a *BlockError, an
// ErrMalformedEvent) or of the downstream writer; after one, every call
// fails with it.
func (e *EventWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	e.buf = append(e.buf, p...)
	if bytes.IndexByte(p, '\r') >= 0 {
		e.buf = bytes.ReplaceAll(e.buf, []byte("\r\n"), []byte("\n"))
	}
	for {
		k := bytes.Index(e.buf, e.sep)
		if k < 0 {
			break
		}
		ev := e.buf[:k+len(e.sep)]
		e.out, e.err = e.f.Event(e.out[:0], ev)
		e.buf = e.buf[:copy(e.buf, e.buf[len(ev):])]
		if err := e.emit(); err != nil {
			return 0, err
		}
	}
	if len(e.buf) > MaxEventSize {
		e.err = fmt.Errorf("screen: upstream event exceeds %d bytes without an end (%q); the answer was cut", MaxEventSize, e.sep)
		return 0, e.err
	}
	return len(p), nil
}

// Close screens a last unterminated event, releases what is held back and
// writes it.
func (e *EventWriter) Close() error {
	if e.err != nil {
		return e.err
	}
	if len(bytes.TrimSpace(e.buf)) > 0 {
		e.out, e.err = e.f.Event(e.out[:0], append(e.buf, e.sep...))
		if err := e.emit(); err != nil {
			return err
		}
	}
	e.out, e.err = e.f.Close(e.out[:0])
	return e.emit()
}

// Findings returns what fired so far.
func (e *EventWriter) Findings() []Finding { return e.f.Findings() }

// emit writes e.out downstream and flushes; it returns e.err or a write
// error.
func (e *EventWriter) emit() error {
	if len(e.out) > 0 {
		if _, err := e.w.Write(e.out); err != nil && e.err == nil {
			e.err = fmt.Errorf("screen: write to client: %w", err)
		}
		if fl, ok := e.w.(flusher); ok {
			fl.Flush()
		}
	}
	return e.err
}
