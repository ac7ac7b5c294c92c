package guard

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moatmesh/moat/mesh/llmapi"
)

// errEventTooLarge: an upstream event exceeded Config.MaxEventBytes.
var errEventTooLarge = errors.New("event too large")

// relay passes one streamed answer through, event by event: each SSE
// event (OpenAI) or NDJSON line (Ollama) is read whole, counted, written
// and flushed before the relay waits for the next; events that arrived
// together are flushed together. Nothing else is buffered.
type relay struct {
	c      *call
	br     *bufio.Reader
	rc     *http.ResponseController
	idle   *time.Timer
	filter OutputFilter
	ev     []byte // the event being read
	out    []byte // scratch for rewritten events
	prefix []byte // the non-data lines (event:, id:) of the last SSE event with data
	ended  bool   // the filter's End was called
	// silent: the upstream sent nothing for Config.UpstreamIdleTimeout and
	// the idle timer closed its body.
	silent atomic.Bool
	estOut int64 // estimated answer tokens so far
	rep    tally // the upstream's last usage report
	sent   bool  // something was written
	// unflushed: something was written and not flushed yet (the next
	// event was already buffered).
	unflushed bool
}

// readers are the stream relays' read buffers (events are copied out of
// them before they are handled).
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 32<<10) }}

// relayStream streams resp to the caller.
func (c *call) relayStream(resp *http.Response) {
	h := c.w.Header()
	h.Set("Content-Type", resp.Header.Get("Content-Type"))
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	c.status = http.StatusOK
	c.w.WriteHeader(http.StatusOK)
	br := readers.Get().(*bufio.Reader)
	br.Reset(resp.Body)
	defer func() { br.Reset(nil); readers.Put(br) }()
	rl := &relay{c: c, br: br, rc: http.NewResponseController(c.w)}
	if s := c.g.cfg.Screen; s != nil {
		rl.filter = s.Output(c.screenCall())
	}
	// Closing the body ends the upstream request (its connection closes)
	// and the read waiting on it.
	rl.idle = time.AfterFunc(c.g.cfg.UpstreamIdleTimeout, func() { rl.silent.Store(true); resp.Body.Close() })
	defer rl.idle.Stop()
	rl.rc.Flush()
	rl.run()
	c.settleStream(rl)
}

func (rl *relay) run() {
	defer rl.flush()
	for {
		if !rl.eventBuffered() && !rl.flush() { // before waiting for the upstream
			return
		}
		ev, err := rl.next()
		if len(ev) > 0 && !rl.handle(ev) {
			return
		}
		if err == io.EOF {
			rl.flushFilter()
			return
		}
		if err != nil {
			rl.broken(err)
			return
		}
		rl.idle.Reset(rl.c.g.cfg.UpstreamIdleTimeout)
	}
}

// next reads one event: up to and including the blank line for SSE, one
// line for NDJSON.
func (rl *relay) next() ([]byte, error) {
	rl.ev = rl.ev[:0]
	for {
		line, err := rl.br.ReadSlice('\n')
		if len(rl.ev)+len(line) > rl.c.g.cfg.MaxEventBytes {
			return nil, errEventTooLarge
		}
		rl.ev = append(rl.ev, line...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil:
			return rl.ev, err
		case rl.c.api.Family == llmapi.Ollama || isBlank(line):
			return rl.ev, nil
		}
	}
}

func isBlank(line []byte) bool { return len(bytes.TrimRight(line, "\r\n")) == 0 }

// payload returns an event's data: the NDJSON line, or the SSE event's
// data lines joined by newlines (nil when it has none).
func (rl *relay) payload(ev []byte) []byte {
	if rl.c.api.Family == llmapi.Ollama {
		return bytes.TrimSpace(ev)
	}
	var data []byte
	n := 0
	for line := range bytes.Lines(ev) {
		d, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		d = bytes.TrimSuffix(bytes.TrimSuffix(bytes.TrimPrefix(d, []byte(" ")), []byte("\n")), []byte("\r"))
		if n++; n == 1 {
			data = d
		} else {
			data = append(append(append([]byte(nil), data...), '\n'), d...)
		}
	}
	return data
}

// handle counts, screens and forwards one event; false ends the stream.
func (rl *relay) handle(ev []byte) bool {
	c := rl.c
	p := rl.payload(ev)
	if len(p) == 0 {
		return rl.write(ev)
	}
	if string(p) == "[DONE]" {
		return rl.flushFilter() && rl.write(ev)
	}
	t := readTally(c.api.Family, p)
	if t.reported {
		rl.rep = t
	}
	rl.estOut += estimate(t.textBytes)
	if t.usageOnly && c.api.UsageOption && !c.req.IncludeUsage {
		return true // asked for the guard's accounting, not the caller's
	}
	if b, why := c.ticket.budget(); b >= 0 && rl.used() > b {
		rl.cut(why, limitMessage(c.who, &refusal{grant: c.grant, reason: why, retry: time.Minute}))
		return false
	}
	if rl.filter == nil {
		return rl.write(ev)
	}
	rl.keepPrefix(ev)
	out, err := rl.filter.Payload(rl.out[:0], p, rl.frameTo)
	return rl.emitFiltered(out, err)
}

// emitFiltered writes what the output filter released and cuts the
// stream when the filter refused to go on.
func (rl *relay) emitFiltered(out []byte, err error) bool {
	rl.out = out
	if len(out) > 0 && !rl.write(out) {
		return false
	}
	if err != nil {
		rl.cutAs(reasonScreen, screenCode(err), fmt.Sprintf("the node's guard cut the answer: %v", err))
		return false
	}
	return true
}

// keepPrefix remembers the SSE event's lines other than data (event:,
// id:), which frameTo puts in front of the payloads it frames.
func (rl *relay) keepPrefix(ev []byte) {
	if rl.c.api.Family == llmapi.Ollama {
		return
	}
	rl.prefix = rl.prefix[:0]
	for line := range bytes.Lines(ev) {
		if !isBlank(line) && !bytes.HasPrefix(line, []byte("data:")) {
			rl.prefix = append(rl.prefix, line...)
		}
	}
}

// frameTo appends p to dst as an event of the API's stream format.
func (rl *relay) frameTo(dst, p []byte) []byte {
	if rl.c.api.Family == llmapi.Ollama {
		return append(append(dst, p...), '\n')
	}
	dst = append(append(dst, rl.prefix...), "data: "...)
	return append(append(dst, p...), '\n', '\n')
}

// used is the request's token use so far, reported or estimated.
func (rl *relay) used() int64 {
	in := rl.rep.in
	if !rl.rep.reported {
		in = estimate(len(rl.c.body))
	}
	return in + max(rl.estOut, rl.rep.out)
}

// frame wraps a payload as an event of the API's stream format.
func (rl *relay) frame(p []byte) []byte {
	if rl.c.api.Family == llmapi.Ollama {
		return append(append([]byte(nil), p...), '\n')
	}
	return append(append([]byte("data: "), p...), '\n', '\n')
}

// write sends ev on. It is flushed to the caller at once unless the
// upstream's next event is already here in full, in which case it goes
// out together with that one (one write instead of two; nothing waits
// for the network).
func (rl *relay) write(ev []byte) bool {
	if _, err := rl.c.w.Write(ev); err != nil {
		rl.gone()
		return false
	}
	rl.unflushed = true
	if !rl.sent {
		rl.sent, rl.c.ttft = true, rl.c.since()
	}
	if rl.eventBuffered() {
		return true
	}
	return rl.flush()
}

// flush sends what was written and not yet flushed.
func (rl *relay) flush() bool {
	if !rl.unflushed {
		return true
	}
	rl.unflushed = false
	if err := rl.rc.Flush(); err != nil {
		rl.gone()
		return false
	}
	return true
}

// eventBuffered reports whether a whole next event has been read from
// the upstream and waits in the buffer: a line for NDJSON, a blank line
// ending an SSE event.
func (rl *relay) eventBuffered() bool {
	n := rl.br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := rl.br.Peek(n)
	if rl.c.api.Family == llmapi.Ollama {
		return bytes.IndexByte(b, '\n') >= 0
	}
	return bytes.Contains(b, []byte("\n\n")) || bytes.Contains(b, []byte("\n\r\n"))
}

func (rl *relay) gone() { rl.c.status, rl.c.reason = 499, "client_gone" }

// cut ends the answer with a final error event saying why.
func (rl *relay) cut(reason, msg string) { rl.cutAs(reason, reason, msg) }

// cutAs is cut with an error code other than the reason (see screenCode).
func (rl *relay) cutAs(reason, code, msg string) {
	rl.c.reason = reason
	status := http.StatusTooManyRequests
	if reason != reasonTPM && reason != reasonDay && reason != reasonBudget {
		status = http.StatusBadGateway
		if reason == reasonScreen {
			status = http.StatusForbidden
		}
	}
	rl.write(rl.frame(llmapi.ErrorBody(rl.c.api.Family, status, code, "the answer was cut: "+msg)))
}

// broken ends a stream the upstream or the caller broke off.
func (rl *relay) broken(err error) {
	c := rl.c
	switch {
	case c.r.Context().Err() != nil:
		rl.gone()
	case errors.Is(err, errEventTooLarge):
		rl.cut(reasonUpstream, fmt.Sprintf("the model server sent an event larger than this node's limit of %d bytes", c.g.cfg.MaxEventBytes))
	case rl.silent.Load():
		rl.cut(reasonUpstreamSlow, fmt.Sprintf("the model server for %q sent nothing for %s", c.model, c.g.cfg.UpstreamIdleTimeout))
	default:
		rl.cut(reasonUpstream, fmt.Sprintf("the model server for %q broke off the answer", c.model))
	}
}

// flushFilter sends what the filter still holds back, once; false ends
// the stream.
func (rl *relay) flushFilter() bool {
	if rl.filter == nil || rl.ended {
		return true
	}
	rl.ended = true
	out, err := rl.filter.End(rl.out[:0], rl.frameTo)
	return rl.emitFiltered(out, err)
}

// settleStream sets the call's token counts after a stream.
func (c *call) settleStream(rl *relay) {
	if rl.rep.reported {
		c.tokensIn, c.tokensOut = rl.rep.in, rl.rep.out
		return
	}
	c.tokensIn, c.tokensOut, c.estimated = estimate(len(c.body)), rl.estOut, true
}
