package seal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LoadOrCreateKey reads the 32-byte key at path, or creates it with fresh
// random bytes when the file does not exist. The file holds the raw key
// and has mode 0600; creation is atomic (a temporary file in the same
// directory, synced, then linked into place), so a crash never leaves a
// partial key and two processes racing to create it end up with the same
// key. The directory is created with mode 0700 when missing.
//
// An existing file of the wrong size, or readable or writable by group or
// others, is refused: the coordinator will not use a key that may have
// leaked or been truncated.
func LoadOrCreateKey(path string) ([KeySize]byte, error) {
	key, err := LoadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createKey(path); err != nil {
		return key, err
	}
	return LoadKey(path)
}

// LoadKey reads the key at path: the raw 32 bytes LoadOrCreateKey
// writes, or the key in base64 or hex on one line. A file readable or
// writable by group or others is refused.
func LoadKey(path string) ([KeySize]byte, error) {
	var key [KeySize]byte
	f, err := os.Open(path)
	if err != nil {
		return key, fmt.Errorf("load sealing key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return key, fmt.Errorf("load sealing key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return key, fmt.Errorf("load sealing key: %s has mode %#o; it must be readable by its owner only (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return key, fmt.Errorf("load sealing key: %w", err)
	}
	if key, err = ParseKey(data); err != nil {
		return key, fmt.Errorf("load sealing key: %s: %w; restore it from a backup (a new key cannot open existing secrets)", path, err)
	}
	return key, nil
}

// ParseKey reads a key given as its raw 32 bytes, or as base64 or hex
// text (one trailing newline allowed).
func ParseKey(data []byte) ([KeySize]byte, error) {
	var key [KeySize]byte
	if len(data) == KeySize {
		copy(key[:], data)
		return key, nil
	}
	text := strings.TrimSpace(string(data))
	for _, dec := range []func(string) ([]byte, error){hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawURLEncoding.DecodeString} {
		if b, err := dec(text); err == nil && len(b) == KeySize {
			copy(key[:], b)
			return key, nil
		}
	}
	return key, fmt.Errorf("holds %d bytes, want exactly %d (or the key in base64 or hex)", len(data), KeySize)
}

// EncodeKey is key in base64, the form MOAT_SEAL_KEY takes.
func EncodeKey(key [KeySize]byte) string { return base64.StdEncoding.EncodeToString(key[:]) }

// KeyID names key without revealing it: the first 8 bytes of an HMAC
// under the key, in hex. Errors and the database show it so that two
// keys can be told apart.
func KeyID(key [KeySize]byte) string {
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte("moat seal key id"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

func createKey(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create sealing key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".sealkey-*")
	if err != nil {
		return fmt.Errorf("create sealing key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeKey(tmp); err != nil {
		return fmt.Errorf("create sealing key: %w", err)
	}
	// Link, unlike rename, never replaces a key another process made first.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create sealing key: %w", err)
	}
	return syncDir(dir)
}

func writeKey(f *os.File) error {
	var key [KeySize]byte
	rand.Read(key[:])
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(key[:]); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("create sealing key: %w", err)
	}
	defer d.Close()
	_ = d.Sync() // best effort; not every filesystem supports it
	return nil
}
