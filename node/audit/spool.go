package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/moatmesh/moat/mesh/auditchain"
)

// SpoolFile is the name of the spool inside its directory. Each line is
// one Record in the chain format of package auditchain:
//
//	{"hash":"<64 hex>",<the rest of the record>}
//
// so editing, removing or reordering any line breaks the chain from there
// on.
const SpoolFile = "spool.jsonl"

// maxLine bounds one spool line when reading (a full prompt is at most the
// guard's body limit, escaped).
const maxLine = 64 << 20

// Options configure a Spool. The zero value is valid.
type Options struct {
	// Sync makes every Append wait for the record to reach the disk
	// (fsync). Default false: records survive a crash of the process, not
	// necessarily of the machine.
	Sync bool
}

// Spool is the node's append-only audit file. It is safe for concurrent
// use.
type Spool struct {
	opts Options
	path string
	mu   struct {
		sync.Mutex
		f      *os.File
		seq    uint64
		prev   string
		closed bool
		buf    bytes.Buffer
		lines  []byte // AppendBatch's, kept between batches
	}
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit spool closed")

// Open opens (creating it when needed) the spool in dir. A last line left
// incomplete by a crash is cut off; the chain continues from the last
// complete record.
func Open(dir string, opts Options) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit spool: %w", err)
	}
	s := &Spool{opts: opts, path: filepath.Join(dir, SpoolFile)}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit spool: %w", err)
	}
	scrubs, err := readScrubs(dir)
	if err != nil {
		f.Close()
		return nil, err
	}
	seq, prev, end, err := lastRecord(f, scrubs)
	if err == nil {
		err = f.Truncate(end)
	}
	if err == nil {
		_, err = f.Seek(end, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit spool %s: %w", s.path, err)
	}
	s.mu.f, s.mu.seq, s.mu.prev = f, seq, prev
	return s, nil
}

// lastRecord reads r to the end and returns the last complete record's
// seq and hash (the one it was chained with, when scrubbed) and the
// offset just after it.
func lastRecord(r io.Reader, scrubs map[uint64]Scrub) (seq uint64, hash string, end int64, err error) {
	var last []byte
	err = eachLine(r, func(line []byte, off int64) error {
		last = append(last[:0], line...)
		end = off + int64(len(line)) + 1
		return nil
	})
	if err != nil || last == nil {
		return 0, "", end, err
	}
	rec, h, err := openLine(last, scrubs)
	if err != nil {
		return 0, "", 0, fmt.Errorf("last record: %w", err)
	}
	return rec.Seq, h, end, nil
}

// eachLine calls fn with every complete line of r (without its newline)
// and its offset. An unterminated last line is ignored.
func eachLine(r io.Reader, fn func(line []byte, off int64) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var off int64
	var acc []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if acc = append(acc, chunk...); len(acc) > maxLine {
				return fmt.Errorf("line at offset %d is longer than %d bytes", off, maxLine)
			}
			continue
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		line := chunk[:len(chunk)-1]
		if acc != nil {
			line, acc = append(acc, line...), nil
		}
		if err := fn(line, off); err != nil {
			return err
		}
		off += int64(len(line)) + 1
	}
}

// Append chains rec to the spool and writes it. It fills rec.ID (when
// empty), Seq, Prev and Hash.
func (s *Spool) Append(rec *Record) error {
	if rec.ID == "" {
		rec.ID = NewID()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	rec.Seq, rec.Prev, rec.Hash = s.mu.seq+1, s.mu.prev, ""
	line, hash, err := encodeLine(&s.mu.buf, rec)
	if err != nil {
		return fmt.Errorf("audit append: %w", err)
	}
	if _, err := s.mu.f.Write(line); err != nil {
		return fmt.Errorf("audit append: %w", err)
	}
	if s.opts.Sync {
		if err := s.mu.f.Sync(); err != nil {
			return fmt.Errorf("audit append: %w", err)
		}
	}
	rec.Hash, s.mu.seq, s.mu.prev = hash, rec.Seq, hash
	return nil
}

// AppendBatch chains recs to the spool in order and writes them with one
// write (and one fsync with Options.Sync). It fills each record's ID (when
// empty), Seq, Prev and Hash. On a write error none of them counts as
// written.
func (s *Spool) AppendBatch(recs []*Record) error {
	for _, rec := range recs {
		if rec.ID == "" {
			rec.ID = NewID()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	seq, prev := s.mu.seq, s.mu.prev
	lines := s.mu.lines[:0]
	defer func() {
		if cap(lines) <= maxKeptBatch {
			s.mu.lines = lines
		}
	}()
	for _, rec := range recs {
		rec.Seq, rec.Prev, rec.Hash = seq+1, prev, ""
		line, hash, err := encodeLine(&s.mu.buf, rec)
		if err != nil {
			return fmt.Errorf("audit append: %w", err)
		}
		lines = append(lines, line...)
		rec.Hash, seq, prev = hash, rec.Seq, hash
	}
	if _, err := s.mu.f.Write(lines); err != nil {
		return fmt.Errorf("audit append: %w", err)
	}
	if s.opts.Sync {
		if err := s.mu.f.Sync(); err != nil {
			return fmt.Errorf("audit append: %w", err)
		}
	}
	s.mu.seq, s.mu.prev = seq, prev
	return nil
}

// maxKeptBatch bounds the batch buffer a spool keeps for the next batch.
const maxKeptBatch = 1 << 20

// encodeLine renders rec (whose Hash is empty) as a spool line in buf.
func encodeLine(buf *bytes.Buffer, rec *Record) (line []byte, hash string, err error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, "", err
	}
	buf.Reset()
	hash = auditchain.Seal(buf, body)
	buf.WriteByte('\n')
	return buf.Bytes(), hash, nil
}

// Seq returns the sequence number of the last record appended.
func (s *Spool) Seq() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.seq
}

// Dir returns the spool's directory.
func (s *Spool) Dir() string { return filepath.Dir(s.path) }

// Close syncs and closes the spool file.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	s.mu.closed = true
	err := s.mu.f.Sync()
	if cerr := s.mu.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// dropPrefix deletes the first n bytes (whole records) of the spool.
func (s *Spool) dropPrefix(n int64) error { return s.replacePrefix(n, nil) }

// replacePrefix replaces the first n bytes (whole records) of the spool
// with head: head and the rest are copied to a new file that replaces
// the spool. Appends wait only while the part written since the copy
// began is copied.
func (s *Spool) replacePrefix(n int64, head []byte) error {
	dir := filepath.Dir(s.path)
	tmp, err := os.CreateTemp(dir, SpoolFile+".tmp*")
	if err != nil {
		return fmt.Errorf("audit spool rewrite: %w", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	src, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("audit spool rewrite: %w", err)
	}
	defer src.Close()
	if _, err := src.Seek(n, io.SeekStart); err != nil {
		return fmt.Errorf("audit spool rewrite: %w", err)
	}
	if _, err := tmp.Write(head); err != nil {
		return fmt.Errorf("audit spool rewrite: %w", err)
	}
	if _, err := io.Copy(tmp, src); err != nil { // what is there now
		return fmt.Errorf("audit spool rewrite: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return ErrClosed
	}
	if _, err := io.Copy(tmp, src); err != nil { // what was appended meanwhile
		return fmt.Errorf("audit spool rewrite: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("audit spool rewrite: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("audit spool rewrite: %w", err)
	}
	done = true
	s.mu.f.Close()
	s.mu.f = tmp // positioned at its end
	return syncDir(dir)
}
