package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// A netmap stream (GET /api/v1/netmap) is NDJSON: one netmap per line.
// Empty lines are heartbeats that keep proxies from closing an idle
// stream; readers skip them.

// StreamReader reads netmaps from a stream, one line at a time, with the
// size limit of a single netmap per line.
type StreamReader struct {
	r    *bufio.Reader
	line []byte
}

// NewStreamReader returns a reader of the netmap stream r.
func NewStreamReader(r io.Reader) *StreamReader {
	return &StreamReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// Next returns the next netmap, validated. It returns io.EOF at the clean
// end of the stream, and an error naming the problem for an oversized or
// invalid line (after which the stream cannot be trusted: reconnect).
func (s *StreamReader) Next() (*NetMap, error) {
	var nm NetMap
	if err := s.next("netmap stream", &nm); err != nil {
		return nil, err
	}
	return &nm, nil
}

// next reads the next line that is not a heartbeat into v and validates
// it; what names the stream in errors.
func (s *StreamReader) next(what string, v interface{ Validate() error }) error {
	for {
		line, err := s.readLine()
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue // heartbeat
		}
		if err := Unmarshal(line, v); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := v.Validate(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
}

// readLine returns one line without its newline, refusing lines longer
// than MaxNetMapBytes.
func (s *StreamReader) readLine() ([]byte, error) {
	s.line = s.line[:0]
	for {
		chunk, err := s.r.ReadSlice('\n')
		s.line = append(s.line, chunk...)
		if len(s.line) > MaxNetMapBytes+1 {
			return nil, fmt.Errorf("netmap stream: %w: a line is over %d bytes", ErrTooLarge, MaxNetMapBytes)
		}
		switch {
		case err == nil:
			return bytes.TrimSuffix(s.line, []byte("\n")), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(s.line) > 0:
			return nil, fmt.Errorf("netmap stream: %w (a line was cut off)", io.ErrUnexpectedEOF)
		default:
			return nil, err
		}
	}
}
