package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Size limits for decoding. A message over its limit is refused whole.
const (
	MaxNetMapBytes  = 32 << 20 // one netmap; ~60,000 peers
	MaxRequestBytes = 64 << 10 // one login or enroll request or result without netmap
)

// ErrTooLarge is returned (wrapped) when input exceeds its size limit.
var ErrTooLarge = errors.New("message too large")

// Decode reads one JSON value of at most limit bytes from r into v.
// Fields v does not know are ignored; a value of the wrong type, trailing
// data or oversized input is an error that says where the problem is.
func Decode(r io.Reader, limit int64, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("%w: over the limit of %d bytes", ErrTooLarge, limit)
	}
	return Unmarshal(b, v)
}

// Unmarshal decodes b, which must hold exactly one JSON value, into v with
// the rules of Decode (but no size limit: the caller has bounded b).
func Unmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(v); err != nil {
		return describe(err, b)
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("invalid JSON: unexpected data after the value at offset %d", d.InputOffset())
	}
	return nil
}

// describe turns encoding/json's errors into ones that name the field or
// the position.
func describe(err error, b []byte) error {
	var typ *json.UnmarshalTypeError
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return fmt.Errorf("field %s: got JSON %s, want %s", field, typ.Value, typ.Type)
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at offset %d: %v", syn.Offset, syn)
	case errors.Is(err, io.EOF):
		return errors.New("invalid JSON: empty input")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("invalid JSON: input ends early after %d bytes", len(b))
	default:
		// Errors from UnmarshalText (keys, addresses, durations) land here
		// and already say what was wrong with the value.
		return fmt.Errorf("invalid value: %w", err)
	}
}

// DecodeNetMap reads and validates one netmap from r.
func DecodeNetMap(r io.Reader) (*NetMap, error) {
	var nm NetMap
	if err := Decode(r, MaxNetMapBytes, &nm); err != nil {
		return nil, fmt.Errorf("decode netmap: %w", err)
	}
	if err := nm.Validate(); err != nil {
		return nil, fmt.Errorf("decode netmap: %w", err)
	}
	return &nm, nil
}
