package seal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
	key, err := loadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createKey(path); err != nil {
		return key, err
	}
	return loadKey(path)
}

func loadKey(path string) ([KeySize]byte, error) {
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
	if fi.Size() != KeySize {
		return key, fmt.Errorf("load sealing key: %s holds %d bytes, want exactly %d; restore it from a backup (a new key cannot open existing secrets)", path, fi.Size(), KeySize)
	}
	if _, err := io.ReadFull(f, key[:]); err != nil {
		return key, fmt.Errorf("load sealing key: %w", err)
	}
	return key, nil
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
