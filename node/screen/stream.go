package screen

import (
	"strings"
	"unicode/utf8"
	"unsafe"
)

// streamContext is how many already-released bytes a Stream keeps in front
// of its pending text, so detectors see a match's left context (the
// "password=" before a value, the '[' of a markdown link).
const streamContext = 64

// maxStreamFindings bounds the findings a Stream remembers.
const maxStreamFindings = 256

// Stream screens text that arrives in chunks, such as a model's answer.
// Push releases every byte that no pattern can still start in and holds
// back at most HoldBack() bytes; Flush releases the rest at the end. A
// secret split across any number of chunks is redacted (or blocks) as if
// it had arrived whole. A Stream is not safe for concurrent use.
type Stream struct {
	sc       *Scanner
	c        *ctx
	buf      []byte // buf[:keep] is released context, buf[keep:] is pending
	keep     int
	base     int // stream offset of buf[0]
	tail     tailKind
	pem      pemState
	err      error
	findings []Finding
	dropped  int
}

// NewStream returns a Stream that screens with s's rules and actions.
func (s *Scanner) NewStream() *Stream {
	return &Stream{sc: s, c: &ctx{on: &s.on, allow: s.allow}}
}

// Push adds chunk to the stream and appends the text that is now safe to
// release, with redactions applied, to dst. After a block rule fires it
// returns the text before the match and a *BlockError, and every later
// call returns the same error.
func (st *Stream) Push(dst, chunk []byte) ([]byte, error) {
	if st.err != nil {
		return dst, st.err
	}
	if st.tail != tailNone {
		n, done := st.follow(unsafe.String(unsafe.SliceData(chunk), len(chunk)))
		st.base += n
		if !done {
			return dst, nil
		}
		st.tail, chunk = tailNone, chunk[n:]
	}
	if len(st.sc.dets) == 0 {
		return append(dst, chunk...), nil
	}
	st.buf = append(st.buf, chunk...)
	return st.release(dst, false)
}

// Flush releases everything still held back; call it once the answer has
// ended. The Stream can then be fed again as a new text.
func (st *Stream) Flush(dst []byte) ([]byte, error) {
	if st.err != nil {
		return dst, st.err
	}
	dst, err := st.release(dst, true)
	st.buf, st.keep, st.tail, st.pem = st.buf[:0], 0, tailNone, pemState{}
	return dst, err
}

// Pending returns how many bytes are held back now.
func (st *Stream) Pending() int { return len(st.buf) - st.keep }

// Findings returns what fired so far, with offsets into the stream's input
// (the concatenated chunks). It keeps the first maxStreamFindings.
func (st *Stream) Findings() []Finding { return st.findings }

// release scans the buffer and appends what is safe to dst.
func (st *Stream) release(dst []byte, final bool) ([]byte, error) {
	text := unsafe.String(unsafe.SliceData(st.buf), len(st.buf)) // buf is not modified until text is dead
	st.sc.spansOf(st.c, text)
	r := max(len(text)-st.sc.hold, st.keep)
	if final {
		r = len(text)
	}
	pos := st.keep
	for _, sp := range st.c.spans {
		if sp.start < pos {
			if sp.end > pos && st.sc.actions[sp.rule] == ActionRedact {
				pos, r = sp.end, max(r, sp.end) // the rest of a match already redacted
			}
			continue
		}
		if sp.start >= r {
			break
		}
		a := st.sc.actions[sp.rule]
		st.record(sp, a)
		switch a {
		case ActionBlock:
			dst = append(dst, text[pos:sp.start]...)
			st.err = &BlockError{Rule: ruleDefs[sp.rule].id, Category: ruleDefs[sp.rule].cat}
			return dst, st.err
		case ActionRedact:
			dst = append(dst, text[pos:sp.start]...)
			dst = append(dst, marker(ruleDefs[sp.rule].id)...)
			pos, r = sp.end, max(r, sp.end)
			if sp.end == len(text) && !final && ruleDefs[sp.rule].tail != tailNone {
				st.enterTail(sp)
				return dst, nil
			}
		}
	}
	for r < len(text) && !utf8.RuneStart(text[r]) {
		r++ // never split a character; no match starts inside one
	}
	if r > pos {
		dst = append(dst, text[pos:r]...)
		pos = r
	}
	st.compact(pos)
	return dst, nil
}

// record remembers a finding, in stream offsets.
func (st *Stream) record(sp span, a Action) {
	if len(st.findings) >= maxStreamFindings {
		st.dropped++
		return
	}
	d := ruleDefs[sp.rule]
	st.findings = append(st.findings, Finding{Rule: d.id, Category: d.cat, Start: st.base + sp.start, End: st.base + sp.end, Action: a})
}

// compact drops released bytes but the last streamContext before pos.
func (st *Stream) compact(pos int) {
	from := max(0, pos-streamContext)
	n := copy(st.buf, st.buf[from:])
	st.buf = st.buf[:n]
	st.base += from
	st.keep = pos - from
}

// enterTail starts following a redacted match that reached the end of the
// visible text into the next chunks.
func (st *Stream) enterTail(sp span) {
	st.tail, st.pem = ruleDefs[sp.rule].tail, pemState{}
	if sp.rule == rPrivateKey {
		block := string(st.buf[sp.start:sp.end])
		if k := strings.Index(block[min(len(block), 11):], "-----"); k >= 0 {
			st.pem.scan(block[11+k+5:])
		}
	}
	st.base += len(st.buf)
	st.buf, st.keep = st.buf[:0], 0
}

// follow consumes the part of chunk that continues the match being
// followed and reports whether the match ended within chunk.
func (st *Stream) follow(chunk string) (int, bool) {
	switch st.tail {
	case tailPEM:
		return st.pem.scan(chunk)
	case tailGeneric:
		n := genericValueLen(chunk)
		return n, n < len(chunk)
	case tailURL:
		n := urlEnd(chunk, 0)
		if n < len(chunk) && chunk[n] == ')' {
			n++
		}
		return n, n < len(chunk)
	}
	n := runOf(chunk, 0, cURLSafe|cB64)
	return n, n < len(chunk)
}
