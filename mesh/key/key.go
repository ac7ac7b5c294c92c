// Package key holds WireGuard Curve25519 keys: generation, the standard
// base64 text form that wg(8) and wg-quick configs use, parsing with clear
// errors, and constant-time comparison.
//
// A Private never prints itself: String, Format and MarshalJSON redact it,
// so a key cannot reach a log by accident. Use Text to write one on purpose.
package key

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/curve25519"
)

// Len is the length in bytes of a WireGuard key.
const Len = 32

// Private is a WireGuard private key. The zero value is not a valid key.
type Private struct{ k [Len]byte }

// Public is a WireGuard public key. The zero value is not a valid key.
type Public struct{ k [Len]byte }

// ErrZero is returned when a key is all zeros, which WireGuard rejects.
var ErrZero = errors.New("key is all zeros")

// NewPrivate returns a fresh private key from crypto/rand, clamped as
// Curve25519 requires.
func NewPrivate() (Private, error) {
	var p Private
	if _, err := rand.Read(p.k[:]); err != nil {
		return Private{}, fmt.Errorf("generate private key: %w", err)
	}
	clamp(&p.k)
	return p, nil
}

func clamp(k *[Len]byte) {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// Public returns the public key that belongs to p.
func (p Private) Public() Public {
	var pub Public
	curve25519.ScalarBaseMult(&pub.k, &p.k)
	return pub
}

// IsZero reports whether p is the zero value.
func (p Private) IsZero() bool { return isZero(p.k) }

// Equal compares p and o in constant time.
func (p Private) Equal(o Private) bool { return subtle.ConstantTimeCompare(p.k[:], o.k[:]) == 1 }

// Text returns the standard base64 form. It is the only way to print a
// private key; call it only to write the key to its owner's storage.
func (p Private) Text() string { return base64.StdEncoding.EncodeToString(p.k[:]) }

// Hex returns the lowercase hex form that wireguard-go's UAPI wants.
// Like Text, it is meant for the engine only.
func (p Private) Hex() string { return hex.EncodeToString(p.k[:]) }

// String redacts the key.
func (p Private) String() string {
	if p.IsZero() {
		return "privkey:zero"
	}
	return "privkey:REDACTED"
}

// Format makes every fmt verb (%v, %s, %x, %#v ...) print the redaction.
func (p Private) Format(f fmt.State, _ rune) { fmt.Fprint(f, p.String()) }

// GoString redacts the key for %#v.
func (p Private) GoString() string { return p.String() }

// MarshalJSON refuses to encode a private key: they never cross the wire.
func (p Private) MarshalJSON() ([]byte, error) {
	return nil, errors.New("key: refusing to marshal a private key to JSON; use Text to store it")
}

// ParsePrivate parses the standard base64 form of a private key.
func ParsePrivate(s string) (Private, error) {
	var p Private
	if err := decode(&p.k, s, "private"); err != nil {
		return Private{}, err
	}
	return p, nil
}

// ParsePublic parses the standard base64 form of a public key.
func ParsePublic(s string) (Public, error) {
	var p Public
	if err := decode(&p.k, s, "public"); err != nil {
		return Public{}, err
	}
	return p, nil
}

func decode(dst *[Len]byte, s, kind string) error {
	if len(s) != base64.StdEncoding.EncodedLen(Len) {
		return fmt.Errorf("parse %s key: want %d base64 characters, got %d", kind, base64.StdEncoding.EncodedLen(Len), len(s))
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return fmt.Errorf("parse %s key: not standard base64: %w", kind, err)
	}
	if len(b) != Len {
		return fmt.Errorf("parse %s key: decodes to %d bytes, want %d", kind, len(b), Len)
	}
	copy(dst[:], b)
	if isZero(*dst) {
		return fmt.Errorf("parse %s key: %w", kind, ErrZero)
	}
	return nil
}

// IsZero reports whether p is the zero value.
func (p Public) IsZero() bool { return isZero(p.k) }

// Equal compares p and o in constant time.
func (p Public) Equal(o Public) bool { return subtle.ConstantTimeCompare(p.k[:], o.k[:]) == 1 }

// String returns the standard base64 form.
func (p Public) String() string { return base64.StdEncoding.EncodeToString(p.k[:]) }

// Short returns the first 8 base64 characters, for logs and status lines.
func (p Public) Short() string { return p.String()[:8] }

// Hex returns the lowercase hex form that wireguard-go's UAPI wants.
func (p Public) Hex() string { return hex.EncodeToString(p.k[:]) }

// Raw returns the 32 key bytes.
func (p Public) Raw() [Len]byte { return p.k }

// MarshalText implements encoding.TextMarshaler (base64).
func (p Public) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (base64).
func (p *Public) UnmarshalText(b []byte) error {
	v, err := ParsePublic(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

func isZero(k [Len]byte) bool {
	var z [Len]byte
	return subtle.ConstantTimeCompare(k[:], z[:]) == 1
}

// PublicFromRaw returns the public key with the given 32 bytes.
func PublicFromRaw(b [Len]byte) Public { return Public{k: b} }
