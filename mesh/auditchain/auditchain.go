// Package auditchain is the hash chain of a node's audit records: the
// line format the node's spool writes and ships, and the checks that
// prove a run of records intact. The node (node/audit) writes and
// verifies its spool with it; the coordinator checks the records it
// holds with the same code.
//
// A record is one line of JSON whose first member is its hash:
//
//	{"hash":"<64 hex>",<the rest of the record>}
//
// The hash is the SHA-256 of the record's JSON without the hash member,
// i.e. of "{" followed by the rest of the line after the hash member and
// its comma. That JSON carries "seq", the record's position in its
// node's chain from 1, and "prev", the previous record's hash ("" for the
// first), so editing, removing or reordering any record breaks the chain
// from there on.
//
// Records deleted once their retention ran out are stood for by a Span:
// where the run began and the chain head at its end, so what remains
// still verifies and only the deletions retention made are explained.
package auditchain

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// ErrBroken is wrapped by every error that says the chain does not hold.
var ErrBroken = errors.New("audit chain broken")

const (
	prefix = `{"hash":"`
	hexLen = 2 * sha256.Size
)

// Seal writes body, a record's JSON object without a hash member, to buf
// as a chain line (without a newline) and returns its hash.
func Seal(buf *bytes.Buffer, body []byte) (hash string) {
	sum := sha256.Sum256(body)
	hash = hex.EncodeToString(sum[:])
	buf.WriteString(prefix)
	buf.WriteString(hash)
	buf.WriteString(`",`)
	buf.Write(body[1:])
	return hash
}

// Open checks that line starts with its own hash and that the rest
// matches it. It returns the record's JSON without the hash member and
// the hash.
func Open(line []byte) (body []byte, hash string, err error) {
	rest, ok := bytes.CutPrefix(line, []byte(prefix))
	if !ok || len(rest) < hexLen+2 || string(rest[hexLen:hexLen+2]) != `",` {
		return nil, "", fmt.Errorf("%w: the record does not start with its hash", ErrBroken)
	}
	hash = string(rest[:hexLen])
	body = append([]byte{'{'}, rest[hexLen+2:]...)
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != hash {
		return nil, "", fmt.Errorf("%w: the record does not match its hash (edited)", ErrBroken)
	}
	return body, hash, nil
}

// Link is where a record sits in its node's chain.
type Link struct {
	Seq  uint64 `json:"seq"`  // from 1
	Prev string `json:"prev"` // the previous record's hash; "" for the first
	Hash string `json:"-"`    // this record's own hash
}

// OpenLink opens line as Open does and decodes its chain fields.
func OpenLink(line []byte) (Link, error) {
	body, hash, err := Open(line)
	if err != nil {
		return Link{}, err
	}
	var l Link
	if err := json.Unmarshal(body, &l); err != nil {
		return Link{}, fmt.Errorf("%w: %v", ErrBroken, err)
	}
	l.Hash = hash
	return l, nil
}

// Follows checks that next is the record right after prev: its sequence
// number is one more and it points at prev's hash. The zero prev stands
// for the start of the chain, so next must be record 1 with no prev.
func Follows(prev, next Link) error {
	if next.Prev != prev.Hash {
		return fmt.Errorf("%w: the previous record is not the one this record was chained to (removed or reordered)", ErrBroken)
	}
	if next.Seq != prev.Seq+1 {
		return fmt.Errorf("%w: sequence number %d, want %d", ErrBroken, next.Seq, prev.Seq+1)
	}
	return nil
}

// Span stands for a run of consecutive records of one chain that are no
// longer held, deleted once their retention ran out: records First to
// Last, the hash the first of them chained to (Prev) and the hash of the
// last (Head), the chain's head at the cut. The record after the span
// chains to Head, so the chain still verifies across it, and a record
// deleted any other way still leaves a gap.
type Span struct {
	First, Last uint64
	Prev, Head  string
}

// SpanOf is the span of one record.
func SpanOf(l Link) Span { return Span{First: l.Seq, Last: l.Seq, Prev: l.Prev, Head: l.Hash} }

// Start is the span as the record it begins with: what must follow the
// record before it.
func (s Span) Start() Link { return Link{Seq: s.First, Prev: s.Prev} }

// End is the span as the record it ends with: what the record after it
// must follow.
func (s Span) End() Link { return Link{Seq: s.Last, Hash: s.Head} }

// Merge joins spans that follow each other (one starts right after
// another and chains to its head) and drops spans lying inside another.
// Spans that do not follow each other stay apart, so a break between
// them is still found. The result is sorted by First.
func Merge(spans []Span) []Span {
	in := slices.Clone(spans)
	slices.SortFunc(in, func(a, b Span) int {
		return cmp.Or(cmp.Compare(a.First, b.First), -cmp.Compare(a.Last, b.Last))
	})
	var out []Span
	for _, s := range in {
		if len(out) == 0 {
			out = append(out, s)
			continue
		}
		last := &out[len(out)-1]
		switch {
		case s.First >= last.First && s.Last <= last.Last:
			// inside last: nothing more is cut
		case Follows(last.End(), s.Start()) == nil:
			last.Last, last.Head = s.Last, s.Head
		default:
			out = append(out, s)
		}
	}
	return out
}
