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

// Report is what VerifyReport found.
type Report struct {
	Records int // records in the spool
	// Deleted counts the records retention deleted from the spool's
	// start, under Checkpoints checkpoints.
	Deleted     uint64
	Checkpoints int
}

// Verify checks the spool in dir: every record matches its hash, points
// at the previous record's hash, and the sequence numbers have no gaps;
// records deleted by retention (Shipper.Retain) are covered by
// checkpoints that follow each other from record 1, and the spool's
// first record chains to the last of them. It returns nil for an intact
// (or absent) spool and an error wrapping ErrTampered that names the
// first bad line otherwise. Verify detects edits, insertions, removals
// and reordering; cutting records off the end is only detectable against
// what the coordinator already holds.
func Verify(dir string) error {
	_, err := VerifyReport(dir)
	return err
}

// VerifyReport is Verify, saying what it checked.
func VerifyReport(dir string) (Report, error) {
	var rep Report
	cps, err := ReadCheckpoints(dir)
	if err == nil {
		err = checkCheckpoints(cps)
	}
	if err != nil {
		return rep, fmt.Errorf("audit verify: %w", err)
	}
	rep.Checkpoints = len(cps)
	scrubs, err := readScrubs(dir)
	if err != nil {
		return rep, fmt.Errorf("audit verify: %w", err)
	}
	heads := map[uint64]string{}
	for _, cp := range cps {
		heads[cp.Last] = cp.Head
	}
	f, err := os.Open(filepath.Join(dir, SpoolFile))
	if errors.Is(err, os.ErrNotExist) {
		return rep, nil
	}
	if err != nil {
		return rep, fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	var prev auditchain.Link
	err = eachLine(f, func(line []byte, off int64) error {
		rec, hash, err := openLine(line, scrubs)
		next := auditchain.Link{Hash: hash}
		if err == nil && off == 0 {
			prev, err = startLink(rec, cps)
			rep.Deleted = rec.Seq - 1
		}
		if err == nil {
			next.Seq, next.Prev = rec.Seq, rec.Prev
			if err = auditchain.Follows(prev, next); err != nil {
				err = fmt.Errorf("%w: %w", ErrTampered, err)
			} else if h, ok := heads[rec.Seq]; ok && h != hash {
				err = fmt.Errorf("%w: record %d does not match its checkpoint", ErrTampered, rec.Seq)
			}
		}
		if err != nil {
			return fmt.Errorf("audit verify: %s line %d (offset %d): %w", f.Name(), rep.Records+1, off, err)
		}
		prev = next
		rep.Records++
		return nil
	})
	return rep, err
}
