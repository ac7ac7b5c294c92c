package store

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"
)

// The column codecs: how record fields become SQL values and back.

// timeCol scans a stored time (microseconds on SQLite, timestamptz on
// PostgreSQL, NULL for the zero time) into *t, in UTC.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	case time.Time:
		*c.t = v.UTC()
	default:
		return fmt.Errorf("time column: unexpected %T", src)
	}
	return nil
}

// jsonArg is a slice as stored: JSON text, "[]" when empty.
func jsonArg[T any](v []T) (string, error) {
	if len(v) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// jsonCol scans JSON text into *p; an empty array reads back as nil.
type jsonCol[T any] struct{ p *[]T }

func (c jsonCol[T]) Scan(src any) error {
	*c.p = nil
	var b []byte
	switch v := src.(type) {
	case nil:
		return nil
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("json column: unexpected %T", src)
	}
	if err := json.Unmarshal(b, c.p); err != nil {
		return fmt.Errorf("json column: %w", err)
	}
	if len(*c.p) == 0 {
		*c.p = nil
	}
	return nil
}

// addrArg is an address as stored: its text form, NULL when invalid.
func addrArg(a netip.Addr) any {
	if !a.IsValid() {
		return nil
	}
	return a.String()
}

// addrCol scans an address stored as text into *p.
type addrCol struct{ p *netip.Addr }

func (c addrCol) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case nil:
		*c.p = netip.Addr{}
		return nil
	case string:
		s = v
	case []byte:
		s = string(v)
	default:
		return fmt.Errorf("address column: unexpected %T", src)
	}
	a, err := netip.ParseAddr(s)
	*c.p = a
	return err
}

// blobArg is a byte slice as stored: NULL when empty.
func blobArg(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// strArg is a string as stored in a nullable (referencing) column.
func strArg(s string) any {
	if s == "" {
		return nil
	}
	return s
}
