package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/moatmesh/moat/mesh/auditchain"
)

// ErrTampered is wrapped by Verify's error when the chain is broken.
var ErrTampered = errors.New("audit spool tampered with")

// parseLine checks one spool line's own hash and decodes it.
func parseLine(line []byte) (*Record, string, error) {
	body, hash, err := auditchain.Open(line)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrTampered, err)
	}
	var rec Record
	if err := json.Unmarshal(body, &rec); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrTampered, err)
	}
	rec.Hash = hash
	return &rec, hash, nil
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
	var prev auditchain.Link
	err = eachLine(f, func(line []byte, off int64) error {
		rec, hash, err := parseLine(line)
		next := auditchain.Link{Hash: hash}
		if err == nil {
			next.Seq, next.Prev = rec.Seq, rec.Prev
			if err = auditchain.Follows(prev, next); err != nil {
				err = fmt.Errorf("%w: %w", ErrTampered, err)
			}
		}
		if err != nil {
			return fmt.Errorf("audit verify: %s line %d (offset %d): %w", f.Name(), prev.Seq+1, off, err)
		}
		prev = next
		return nil
	})
	return err
}
