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
	buf      []byte // buf[:keep] is released context, buf[keep:] is pending
	keep     int
	base     int // stream offset of buf[0]
	tail     tailKind
	tailSet  *charset // for tailSet
	tailN    int      // for tailJWT: the dots seen; for tailTag: the bytes followed
	pem      pemState
	redEnd   int // stream offset where the last redaction ended
	err      error
	findings []Finding
	dropped  int
}

// streamBuf is a new Stream's buffer capacity: a chunk of a few hundred
// bytes and what is held back fit without growing it.
const streamBuf = 1024

// NewStream returns a Stream that screens with s's rules and actions. It
// borrows the scanner's scratch state only while it scans (in Push and
// Flush), so an idle Stream holds no more than its pending text and
// findings, and needs no release.
func (s *Scanner) NewStream() *Stream {
	return &Stream{sc: s, buf: make([]byte, 0, streamBuf)}
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
	c := st.sc.pool.Get().(*ctx)
	defer st.sc.pool.Put(c)
	st.sc.spansOf(c, text)
	r := max(len(text)-st.sc.hold, st.keep)
	if final {
		r = len(text)
	}
	pos := st.keep
	for _, sp := range c.spans {
		if sp.start < pos {
			// A match that starts in released text: the rest of one just
			// redacted, or one seen only now because the context before
			// it was cut off (when it was whole, it was no match).
			if sp.end > pos && st.base+pos == st.redEnd && st.sc.actions[sp.rule] == ActionRedact {
				pos, r = sp.end, max(r, sp.end)
				st.redEnd = st.base + pos
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
			st.err = &BlockError{Rule: st.sc.defs[sp.rule].id, Category: st.sc.defs[sp.rule].cat}
			return dst, st.err
		case ActionRedact:
			dst = append(dst, text[pos:sp.start]...)
			dst = append(dst, marker(st.sc.defs[sp.rule].id)...)
			pos, r = sp.end, max(r, sp.end)
			st.redEnd = st.base + pos
			if sp.end == len(text) && !final && sp.tailOf() != tailNone && sp.tailOf() != tailStop {
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
	d := st.sc.defs[sp.rule]
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
	st.tail, st.tailSet, st.tailN, st.pem = sp.tailOf(), sp.set, 0, pemState{}
	switch st.tail {
	case tailJWT:
		st.tailN = strings.Count(string(st.buf[sp.start:sp.end]), ".")
	}
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
	case tailSet:
		n := st.tailSet.span(chunk, 0)
		return n, n < len(chunk)
	case tailJWT:
		return st.followJWT(chunk)

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

// followJWT follows the parts of a JWT: base64url runs, and a dot between
// them up to the one before the signature.
func (st *Stream) followJWT(chunk string) (int, bool) {
	for i := 0; i < len(chunk); i++ {
		b := chunk[i]
		switch {
		case b == '.' && st.tailN < 2:
			st.tailN++
		case isTok(b) || b == '/' || b == '\\' || b == '=':
		default:
			return i, true
		}
	}
	return len(chunk), false
}
