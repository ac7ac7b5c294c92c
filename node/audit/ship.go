package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ShippedFile holds, in the spool directory, how far records have been
// delivered: "OFFSET SEQ", the offset in SpoolFile after the last record
// delivered and that record's seq. SEQ is what counts (retention moves
// offsets when it deletes records from the spool's start); nodes from
// before wrote the offset alone, which is still read.
const ShippedFile = "shipped"

// ShipperConfig configures a Shipper.
type ShipperConfig struct {
	// Dir is the spool directory. Required.
	Dir string
	// URL is the coordinator's audit ingest endpoint. Required. Each batch
	// is POSTed there as a JSON array of records (the spool lines as they
	// are) with Content-Type application/json.
	URL string
	// Token is sent as "Authorization: Bearer <Token>"; empty: no header.
	Token string
	// TokenFunc, when set, is asked for the token of each batch instead
	// (a node whose credential rotates). Default: Token.
	TokenFunc func() string
	// Client sends the batches. Required: it carries the coordinator's TLS
	// pinning and timeouts.
	Client *http.Client
	// BatchRecords is the most records one batch holds. Default 500.
	BatchRecords int
	// BatchBytes is the most bytes one batch holds (a single larger record
	// goes alone). Default 4 MiB.
	BatchBytes int
	// Interval is how often the shipper looks for new records when not
	// kicked. Default 5s. After a failure it waits twice as long each time,
	// up to MaxBackoff.
	Interval time.Duration
	// MaxBackoff bounds the wait after failures. Default 1 min.
	MaxBackoff time.Duration
	// Logger receives delivery failures. Default: discard.
	Logger *slog.Logger
	// Spool turns on the spool's housekeeping: every RetentionInterval
	// (default 1 h) the shipper removes the prompts kept in clear from
	// delivered records (PurgePrompts) and, with Retention, deletes the
	// delivered records older than it says (Retain), calling OnRetain
	// with the checkpoint of each run that deleted some. Nil: no
	// housekeeping; without Retention every record stays.
	Spool             *Spool
	Retention         RetentionFunc
	RetentionInterval time.Duration
	OnRetain          func(Checkpoint)
}

// Shipper delivers the spool's records to the coordinator at least once:
// it advances and persists its offset (ShippedFile) only after the
// coordinator answered 2xx, so a crash of either side resends at most the
// last batch, which the coordinator drops by record ID. It owns one
// goroutine, stopped by Close.
type Shipper struct {
	cfg    ShipperConfig
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex // serialises shipping (loop and ShipNow) and retention
	pos    position   // guarded by mu; read from ShippedFile on first use
}

// position is how far records have been delivered: the offset in
// SpoolFile after the last one, and its seq.
type position struct {
	off   int64
	seq   uint64
	valid bool
}

// NewShipper checks cfg and starts shipping.
func NewShipper(cfg ShipperConfig) (*Shipper, error) {
	s, err := newShipper(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go s.loop(ctx)
	return s, nil
}

// newShipper checks cfg and returns a shipper that ships only when asked
// (ShipNow, Retain, PurgePrompts): no goroutine.
func newShipper(cfg ShipperConfig) (*Shipper, error) {
	if cfg.Dir == "" || cfg.URL == "" || cfg.Client == nil {
		return nil, errors.New("audit shipper: Dir, URL and Client are required")
	}
	def(&cfg.BatchRecords, 500)
	def(&cfg.BatchBytes, 4<<20)
	def(&cfg.Interval, 5*time.Second)
	def(&cfg.MaxBackoff, time.Minute)
	def(&cfg.RetentionInterval, time.Hour)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Shipper{cfg: cfg, kick: make(chan struct{}, 1), cancel: func() {}}, nil
}

func def[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Kick asks the shipper to look for new records now. It never blocks.
func (s *Shipper) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Close stops the shipper and waits for it. Records not yet delivered stay
// in the spool for the next Shipper.
func (s *Shipper) Close() error {
	s.cancel()
	if s.done != nil {
		<-s.done
	}
	return nil
}

func (s *Shipper) loop(ctx context.Context) {
	defer close(s.done)
	wait := s.cfg.Interval
	var retained time.Time
	for {
		if _, err := s.ShipNow(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("audit shipping failed; will retry", "err", err, "retry_in", wait)
			wait = min(2*wait, s.cfg.MaxBackoff)
		} else {
			wait = s.cfg.Interval
		}
		if s.cfg.Spool != nil && time.Since(retained) >= s.cfg.RetentionInterval {
			retained = time.Now()
			s.housekeep(retained)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-s.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// housekeep removes the clear prompts of delivered records and runs
// retention once, logging what fails.
func (s *Shipper) housekeep(now time.Time) {
	if n, err := s.PurgePrompts(s.cfg.Spool); err != nil {
		s.cfg.Logger.Error("audit prompt purge failed; will retry", "err", err)
	} else if n > 0 {
		s.cfg.Logger.Info("removed prompts kept in clear from delivered audit records", "records", n)
	}
	if s.cfg.Retention == nil {
		return
	}
	cp, err := s.Retain(s.cfg.Spool, now, s.cfg.Retention)
	switch {
	case err != nil:
		s.cfg.Logger.Error("audit retention failed; will retry", "err", err)
	case cp.Last != 0 && s.cfg.OnRetain != nil:
		s.cfg.OnRetain(cp)
	}
}

// ShipNow delivers batches until the spool is shipped to its end or a
// delivery fails, and returns the number of records delivered.
func (s *Shipper) ShipNow(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for {
		pos, err := s.position()
		if err != nil {
			return total, err
		}
		batch, n, next, err := s.readBatch(pos.off)
		if err != nil || n == 0 {
			return total, err
		}
		if err := s.post(ctx, batch); err != nil {
			return total, err
		}
		if err := s.setPosition(next); err != nil {
			return total, err
		}
		total += n
	}
}

// readBatch returns the records after off as a JSON array, their count and
// the position after the last.
func (s *Shipper) readBatch(off int64) (batch []byte, n int, next position, err error) {
	f, err := os.Open(filepath.Join(s.cfg.Dir, SpoolFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, next, nil
	}
	if err != nil {
		return nil, 0, next, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, 0, next, err
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	var last []byte
	errFull := errors.New("full")
	err = eachLine(f, func(line []byte, lineOff int64) error {
		if n == s.cfg.BatchRecords || (n > 0 && buf.Len()+len(line) > s.cfg.BatchBytes) {
			return errFull
		}
		if n > 0 {
			buf.WriteByte(',')
		}
		buf.Write(line)
		n++
		last = line
		next.off = off + lineOff + int64(len(line)) + 1
		return nil
	})
	if err != nil && err != errFull {
		return nil, 0, next, err
	}
	if n > 0 {
		if next.seq, err = lineSeq(last); err != nil {
			return nil, 0, next, err
		}
	}
	buf.WriteByte(']')
	next.valid = true
	return buf.Bytes(), n, next, nil
}

// lineSeq reads the seq of one spool line without checking its hash.
func lineSeq(line []byte) (uint64, error) {
	var r struct {
		Seq uint64 `json:"seq"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return 0, fmt.Errorf("audit ship: a spool line does not decode: %w", err)
	}
	return r.Seq, nil
}

func (s *Shipper) post(ctx context.Context, batch []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(batch))
	if err != nil {
		return fmt.Errorf("audit ship: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	tok := s.cfg.Token
	if s.cfg.TokenFunc != nil {
		tok = s.cfg.TokenFunc()
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("audit ship: %w", err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("audit ship: coordinator answered %s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// position returns how far records have been delivered, reading
// ShippedFile and finding its seq in the spool on first use.
func (s *Shipper) position() (position, error) {
	if s.pos.valid {
		return s.pos, nil
	}
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, ShippedFile))
	if errors.Is(err, os.ErrNotExist) {
		s.pos = position{valid: true}
		return s.pos, nil
	}
	if err != nil {
		return position{}, fmt.Errorf("audit ship: %w", err)
	}
	offText, seqText, hasSeq := strings.Cut(strings.TrimSpace(string(b)), " ")
	off, err := strconv.ParseInt(offText, 10, 64)
	seq, serr := strconv.ParseUint(seqText, 10, 64)
	if err != nil || off < 0 || hasSeq && serr != nil {
		return position{}, fmt.Errorf("audit ship: %s holds %q, not an offset and a seq", ShippedFile, b)
	}
	if s.pos, err = findPosition(filepath.Join(s.cfg.Dir, SpoolFile), off, seq, hasSeq); err != nil {
		return position{}, fmt.Errorf("audit ship: %w", err)
	}
	return s.pos, nil
}

// storedOffset reads the offset of ShippedFile as it is, without
// checking it against the spool (for metrics).
func storedOffset(dir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, ShippedFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	offText, _, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	return strconv.ParseInt(offText, 10, 64)
}

// findPosition scans the spool for the end of record seq (when bySeq)
// or for the record ending at off (a ShippedFile from before seqs). A
// shipped seq older than the spool's first record (retention deleted
// it) is the spool's start.
func findPosition(spool string, off int64, seq uint64, bySeq bool) (position, error) {
	f, err := os.Open(spool)
	if errors.Is(err, os.ErrNotExist) {
		return position{valid: true}, nil
	}
	if err != nil {
		return position{}, err
	}
	defer f.Close()
	var at position
	errFound := errors.New("found")
	err = eachLine(f, func(line []byte, lineOff int64) error {
		if !bySeq && lineOff >= off {
			return errFound
		}
		n, err := lineSeq(line)
		if err != nil {
			return err
		}
		if bySeq && n > seq {
			return errFound
		}
		at = position{off: lineOff + int64(len(line)) + 1, seq: n}
		return nil
	})
	if err != nil && err != errFound {
		return position{}, err
	}
	if !bySeq && at.off != off {
		return position{}, fmt.Errorf("%s says %d, which is not the end of a record", ShippedFile, off)
	}
	if bySeq && at.seq != seq && at.off != 0 {
		return position{}, fmt.Errorf("%s says record %d was shipped, which the spool does not hold", ShippedFile, seq)
	}
	at.valid = true
	return at, nil
}

// setPosition persists pos atomically (write, sync, rename) and keeps it.
func (s *Shipper) setPosition(pos position) error {
	path := filepath.Join(s.cfg.Dir, ShippedFile)
	tmp, err := os.CreateTemp(s.cfg.Dir, ShippedFile+".tmp*")
	if err != nil {
		return fmt.Errorf("audit ship: %w", err)
	}
	_, err = fmt.Fprintf(tmp, "%d %d\n", pos.off, pos.seq)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("audit ship: saving offset: %w", err)
	}
	s.pos = pos
	return nil
}
