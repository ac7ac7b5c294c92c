package main

import (
	"bytes"
	"crypto"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"time"

	"aead.dev/minisign"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// The APT repository's OpenPGP key (APT verifies OpenPGP only) is
// derived from the minisign release key, so the offline key is still the
// one secret: HKDF-SHA256 of its Ed25519 secret key, with this label,
// gives the seed of an Ed25519 (EdDSA, v4) signing key whose creation
// time is fixed, hence the same key and fingerprint every time. Nothing
// signed with the minisign key can serve as an OpenPGP signature or the
// other way round: the two keys differ.
const aptKeyLabel = "moat APT repository signing key v1"

// aptKeyCreated is the derived key's creation time (part of its
// fingerprint): fixed, so that the derivation is stable.
var aptKeyCreated = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// aptEntity derives the repository's OpenPGP key from the release key.
func aptEntity(priv minisign.PrivateKey) (*openpgp.Entity, error) {
	seed, err := aptSeed(priv)
	if err != nil {
		return nil, err
	}
	no := false
	cfg := &packet.Config{
		// The primary key's seed is read first; what the library reads
		// after it (the encryption subkey dropped below) is random.
		Rand:                                  io.MultiReader(bytes.NewReader(seed), rand.Reader),
		Time:                                  func() time.Time { return aptKeyCreated },
		Algorithm:                             packet.PubKeyAlgoEdDSA,
		Curve:                                 packet.Curve25519,
		DefaultHash:                           crypto.SHA512,
		NonDeterministicSignaturesViaNotation: &no,
	}
	e, err := openpgp.NewEntity("moat APT repository", fmt.Sprintf("release key %X", priv.ID()), "", cfg)
	if err != nil {
		return nil, err
	}
	e.Subkeys = nil // signing only
	return e, nil
}

// aptSeed is the HKDF of the minisign key's Ed25519 secret key.
func aptSeed(priv minisign.PrivateKey) ([]byte, error) {
	text, err := priv.MarshalText() // unencrypted: the key at bytes 62..126
	if err != nil {
		return nil, err
	}
	i := bytes.IndexByte(text, '\n')
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(text[i+1:])))
	if err != nil || len(raw) < 126 {
		return nil, errors.New("unexpected minisign secret key encoding")
	}
	return hkdf.Key(sha256.New, raw[62:126], nil, aptKeyLabel, 32)
}

// signConfig is what Release is signed with: SHA-512, the key's own
// creation time as the clock's floor.
func signConfig() *packet.Config {
	no := false
	return &packet.Config{DefaultHash: crypto.SHA512, NonDeterministicSignaturesViaNotation: &no}
}

// publicKey returns e's public key, binary (for signed-by) and armored.
func publicKey(e *openpgp.Entity) (bin, asc []byte, err error) {
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		return nil, nil, err
	}
	var a bytes.Buffer
	w, err := armor.Encode(&a, openpgp.PublicKeyType, nil)
	if err != nil {
		return nil, nil, err
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return nil, nil, err
	}
	if err := w.Close(); err != nil {
		return nil, nil, err
	}
	return b.Bytes(), append(a.Bytes(), '\n'), nil
}
