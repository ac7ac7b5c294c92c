package audit

import (
	"bytes"
	"context"
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

// ShippedFile holds, in the spool directory, the offset in SpoolFile up to
// which records have been delivered.
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
	mu     sync.Mutex // serialises shipping (loop and ShipNow)
}

// NewShipper checks cfg and starts shipping.
func NewShipper(cfg ShipperConfig) (*Shipper, error) {
	if cfg.Dir == "" || cfg.URL == "" || cfg.Client == nil {
		return nil, errors.New("audit shipper: Dir, URL and Client are required")
	}
	def(&cfg.BatchRecords, 500)
	def(&cfg.BatchBytes, 4<<20)
	def(&cfg.Interval, 5*time.Second)
	def(&cfg.MaxBackoff, time.Minute)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Shipper{cfg: cfg, kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	go s.loop(ctx)
	return s, nil
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
	<-s.done
	return nil
}

func (s *Shipper) loop(ctx context.Context) {
	defer close(s.done)
	wait := s.cfg.Interval
	for {
		if _, err := s.ShipNow(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("audit shipping failed; will retry", "err", err, "retry_in", wait)
			wait = min(2*wait, s.cfg.MaxBackoff)
		} else {
			wait = s.cfg.Interval
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

// ShipNow delivers batches until the spool is shipped to its end or a
// delivery fails, and returns the number of records delivered.
func (s *Shipper) ShipNow(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	total := 0
	for {
		off, err := s.offset()
		if err != nil {
			return total, err
		}
		batch, n, next, err := s.readBatch(off)
		if err != nil || n == 0 {
			return total, err
		}
		if err := s.post(ctx, batch); err != nil {
			return total, err
		}
		if err := s.setOffset(next); err != nil {
			return total, err
		}
		total += n
	}
}

// readBatch returns the records after off as a JSON array, their count and
// the offset after the last.
func (s *Shipper) readBatch(off int64) (batch []byte, n int, next int64, err error) {
	f, err := os.Open(filepath.Join(s.cfg.Dir, SpoolFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, off, nil
	}
	if err != nil {
		return nil, 0, off, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return nil, 0, off, err
	}
	var buf bytes.Buffer
	buf.WriteByte('[')
	next = off
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
		next = off + lineOff + int64(len(line)) + 1
		return nil
	})
	if err != nil && err != errFull {
		return nil, 0, off, err
	}
	buf.WriteByte(']')
	return buf.Bytes(), n, next, nil
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

func (s *Shipper) offset() (int64, error) {
	b, err := os.ReadFile(filepath.Join(s.cfg.Dir, ShippedFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit ship: %w", err)
	}
	off, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || off < 0 {
		return 0, fmt.Errorf("audit ship: %s holds %q, not an offset", ShippedFile, b)
	}
	return off, nil
}

// setOffset persists off atomically (write, sync, rename).
func (s *Shipper) setOffset(off int64) error {
	path := filepath.Join(s.cfg.Dir, ShippedFile)
	tmp, err := os.CreateTemp(s.cfg.Dir, ShippedFile+".tmp*")
	if err != nil {
		return fmt.Errorf("audit ship: %w", err)
	}
	_, err = tmp.WriteString(strconv.FormatInt(off, 10) + "\n")
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
	return nil
}
