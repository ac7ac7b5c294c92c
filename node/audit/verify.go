package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrTampered is wrapped by Verify's error when the chain is broken.
var ErrTampered = errors.New("audit spool tampered with")

// parseLine checks one spool line's own hash and decodes it.
func parseLine(line []byte) (*Record, string, error) {
	const hexLen = 64
	rest, ok := bytes.CutPrefix(line, []byte(hashPrefix))
	if !ok || len(rest) < hexLen+2 || string(rest[hexLen:hexLen+2]) != `",` {
		return nil, "", fmt.Errorf("%w: line does not start with its hash", ErrTampered)
	}
	want := string(rest[:hexLen])
	body := append([]byte{'{'}, rest[hexLen+2:]...)
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != want {
		return nil, "", fmt.Errorf("%w: the record does not match its hash (edited)", ErrTampered)
	}
	var rec Record
	if err := json.Unmarshal(body, &rec); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrTampered, err)
	}
	rec.Hash = want
	return &rec, want, nil
}

// Verify checks the spool in dir: every record matches its hash, points
// at the previous record's hash, and the sequence numbers have no gaps.
// It returns nil for an intact (or absent) spool and an error wrapping
// ErrTampered that names the first bad line otherwise. Verify detects
// edits, insertions, removals and reordering; cutting records off the end
// is only detectable against what the coordinator already holds.
func Verify(dir string) error {
	f, err := os.Open(filepath.Join(dir, SpoolFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	var prev string
	var n uint64
	err = eachLine(f, func(line []byte, off int64) error {
		n++
		rec, hash, err := parseLine(line)
		switch {
		case err != nil:
		case rec.Prev != prev:
			err = fmt.Errorf("%w: the previous record is not the one this record was chained to (removed or reordered)", ErrTampered)
		case rec.Seq != n:
			err = fmt.Errorf("%w: sequence number %d, want %d", ErrTampered, rec.Seq, n)
		}
		if err != nil {
			return fmt.Errorf("audit verify: %s line %d (offset %d): %w", f.Name(), n, off, err)
		}
		prev = hash
		return nil
	})
	return err
}
