// Package seal encrypts small secrets at rest (TOTP secrets, the
// coordinator's own keys) with AES-256-GCM under one key, the seal key,
// which every coordinator replica is given (or finds in its data
// directory) and which is never stored in the database.
//
// A sealed value is: one version byte (1), a 12-byte random nonce, then the
// GCM ciphertext and tag. The version byte is authenticated together with
// the caller's additional data, which binds a sealed value to its context
// (for example the id of the user it belongs to) so that it cannot be
// copied onto another record.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the length of a sealing key in bytes (AES-256).
const KeySize = 32

const (
	version1  = 1
	nonceSize = 12
	tagSize   = 16
)

// ErrOpen is returned (wrapped) when a sealed value cannot be opened: it is
// malformed, of an unknown version, was sealed under another key or with
// other additional data, or was tampered with.
var ErrOpen = errors.New("sealed value cannot be opened")

// Box seals and opens values under one key. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box sealing under key.
func New(key [KeySize]byte) *Box {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("seal: " + err.Error()) // unreachable: the key size is fixed
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("seal: " + err.Error()) // unreachable: standard nonce size
	}
	return &Box{aead: aead}
}

// Seal encrypts plaintext and authenticates it together with
// additionalData, which is not stored and must be given again to Open.
// Each call uses a fresh random nonce, so sealing the same plaintext twice
// gives different results.
func (b *Box) Seal(plaintext, additionalData []byte) []byte {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = version1
	rand.Read(out[1:]) // never fails (crypto/rand panics on the impossible)
	return b.aead.Seal(out, out[1:1+nonceSize], plaintext, ad(out[0], additionalData))
}

// Open decrypts a value made by Seal with the same key and additional
// data. Any mismatch or tampering gives an error wrapping ErrOpen.
func (b *Box) Open(sealed, additionalData []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+tagSize {
		return nil, fmt.Errorf("open: too short (%d bytes): %w", len(sealed), ErrOpen)
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("open: unknown version %d: %w", sealed[0], ErrOpen)
	}
	nonce, ct := sealed[1:1+nonceSize], sealed[1+nonceSize:]
	pt, err := b.aead.Open(nil, nonce, ct, ad(sealed[0], additionalData))
	if err != nil {
		return nil, fmt.Errorf("open: wrong key, wrong additional data or tampered: %w", ErrOpen)
	}
	return pt, nil
}

// ad prefixes the caller's additional data with the format version.
func ad(version byte, additionalData []byte) []byte {
	out := make([]byte, 0, 1+len(additionalData))
	return append(append(out, version), additionalData...)
}
