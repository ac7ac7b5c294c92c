package coordinator

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
)

// ReleaseKey is a release's minisign public key: the key that signs
// install.sh and SHA256SUMS (internal/tools/release, `make release`).
// The coordinator only checks, at start, that the release it serves
// verifies with it, and puts it on the install command; the command
// and install.sh verify with openssl, so the trust in what a GPU host
// installs rests on this key and not on the coordinator.
type ReleaseKey struct {
	Text string // minisign's base64 form, the RW… line of minisign.pub
	id   [8]byte
	key  ed25519.PublicKey
}

// ParseReleaseKey reads the RW… line of a minisign public key.
func ParseReleaseKey(s string) (ReleaseKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 2+8+ed25519.PublicKeySize || string(b[:2]) != "Ed" {
		return ReleaseKey{}, errors.New("not a minisign public key: want the RW… line of the release's minisign.pub")
	}
	k := ReleaseKey{Text: s, key: ed25519.PublicKey(b[10:])}
	copy(k.id[:], b[2:10])
	return k, nil
}

// verify checks a minisign signature (the text of a .minisig file) of
// msg: the legacy Ed25519 form over msg itself, by this key, and its
// trusted comment. install.sh accepts only that form too.
func (k ReleaseKey) verify(msg, sigText []byte) error {
	lines := bytes.Split(sigText, []byte("\n"))
	if len(lines) < 4 || !bytes.HasPrefix(lines[2], []byte("trusted comment: ")) {
		return errors.New("not a minisign signature")
	}
	sig, err1 := base64.StdEncoding.DecodeString(string(lines[1]))
	global, err2 := base64.StdEncoding.DecodeString(string(lines[3]))
	if err1 != nil || err2 != nil || len(sig) != 2+8+ed25519.SignatureSize || len(global) != ed25519.SignatureSize {
		return errors.New("not a minisign signature")
	}
	if string(sig[:2]) != "Ed" {
		return fmt.Errorf("signature algorithm %q: want the legacy Ed25519 form (release tool), which openssl verifies", sig[:2])
	}
	if !bytes.Equal(sig[2:10], k.id[:]) {
		return fmt.Errorf("signed by key id %X, not by the release key (id %X)", reverse(sig[2:10]), reverse(k.id[:]))
	}
	if !ed25519.Verify(k.key, msg, sig[10:]) {
		return errors.New("bad signature")
	}
	comment := bytes.TrimPrefix(lines[2], []byte("trusted comment: "))
	if !ed25519.Verify(k.key, append(bytes.Clone(sig[10:]), comment...), global) {
		return errors.New("bad signature of the trusted comment")
	}
	return nil
}

// reverse returns a little-endian key id as minisign prints it.
func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i := range b {
		out[len(b)-1-i] = b[i]
	}
	return out
}
