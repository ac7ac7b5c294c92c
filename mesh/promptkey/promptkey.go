// Package promptkey encrypts the prompts a node keeps in its audit
// records to the person who sent them. Every person has a key pair: the
// coordinator keeps the private key sealed under its seal key and hands
// the public key to nodes in the netmap (wire.Identity.PromptKey); a node
// encrypts each stored prompt to it, so the node cannot read back what it
// stored, and destroying the private key (erasure) makes every prompt of
// that person unreadable while the records, whose hashes cover the
// ciphertext, still verify.
//
// The encryption is HPKE (RFC 9180) in base mode: DHKEM(X25519,
// HKDF-SHA256), HKDF-SHA256, AES-256-GCM, with the person's user id as
// the info string, so a prompt cannot be passed off as another person's.
// A sealed prompt is "hpke1:" and the standard base64 of the
// encapsulated key followed by the ciphertext.
package promptkey

import (
	"crypto/ecdh"
	"crypto/hpke"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Size is the length of a public and of a private key.
const Size = 32

// prefix starts a sealed prompt.
const prefix = "hpke1:"

// ErrOpen is wrapped by Open's errors: the wrong key, the wrong person,
// or a changed or malformed value.
var ErrOpen = errors.New("sealed prompt cannot be opened")

var (
	kem  = hpke.DHKEM(ecdh.X25519())
	kdf  = hpke.HKDFSHA256()
	aead = hpke.AES256GCM()
)

// NewKey makes a key pair.
func NewKey() (public, private []byte, err error) {
	k, err := kem.GenerateKey()
	if err != nil {
		return nil, nil, fmt.Errorf("prompt key: %w", err)
	}
	private, err = k.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("prompt key: %w", err)
	}
	return k.PublicKey().Bytes(), private, nil
}

// Seal encrypts prompt to public, the key of the person user.
func Seal(public []byte, user string, prompt []byte) (string, error) {
	pk, err := kem.NewPublicKey(public)
	if err != nil {
		return "", fmt.Errorf("seal prompt: public key: %w", err)
	}
	ct, err := hpke.Seal(pk, kdf, aead, info(user), prompt)
	if err != nil {
		return "", fmt.Errorf("seal prompt: %w", err)
	}
	return prefix + base64.StdEncoding.EncodeToString(ct), nil
}

// Open decrypts sealed with private, the key of the person user.
func Open(private []byte, user, sealed string) ([]byte, error) {
	b64, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return nil, fmt.Errorf("%w: not %s…", ErrOpen, prefix)
	}
	ct, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	k, err := kem.NewPrivateKey(private)
	if err != nil {
		return nil, fmt.Errorf("%w: private key: %v", ErrOpen, err)
	}
	pt, err := hpke.Open(k, kdf, aead, info(user), ct)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpen, err)
	}
	return pt, nil
}

func info(user string) []byte { return []byte("moat prompt v1\x00" + user) }
