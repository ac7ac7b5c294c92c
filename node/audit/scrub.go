package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/moatmesh/moat/mesh/auditchain"
)

// ScrubFile lists, in the spool directory, one Scrub a line: the records
// whose prompt, kept in clear by nodes from before prompt keys, was
// removed from the spool after their delivery (PurgePrompts). Verify and
// retention accept a rewritten record through its scrub.
const ScrubFile = "scrubs.jsonl"

// Scrub vouches for one rewritten spool line.
type Scrub struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"` // the hash the record was chained with
	Line string `json:"line"` // the hex SHA-256 of the rewritten line
}

func lineSHA256(line []byte) string {
	sum := sha256.Sum256(line)
	return hex.EncodeToString(sum[:])
}

// readScrubs returns the scrubs of the spool in dir, by seq.
func readScrubs(dir string) (map[uint64]Scrub, error) {
	list, err := readLines[Scrub](filepath.Join(dir, ScrubFile))
	if err != nil {
		return nil, err
	}
	out := make(map[uint64]Scrub, len(list))
	for _, s := range list {
		out[s.Seq] = s
	}
	return out, nil
}

// openLine checks a spool line against its own hash or, for a record
// whose clear prompt was removed, against its scrub.
func openLine(line []byte, scrubs map[uint64]Scrub) (*Record, string, error) {
	rec, hash, err := parseLine(line)
	if err == nil || len(scrubs) == 0 {
		return rec, hash, err
	}
	var r Record
	if json.Unmarshal(line, &r) != nil {
		return nil, "", err
	}
	s, ok := scrubs[r.Seq]
	if !ok || s.Line != lineSHA256(line) {
		return nil, "", err
	}
	r.Hash = s.Hash
	return &r, s.Hash, nil
}

// PurgePrompts removes the prompts kept in clear ("prompt", written by
// nodes from before prompt keys) from the records of sp already
// delivered to the coordinator, which keeps them encrypted to their
// person's key or removes them too. Each rewritten record gets a Scrub,
// synced before the spool is replaced; records not yet delivered and
// records failing their hash are left. It returns how many records it
// rewrote.
func (s *Shipper) PurgePrompts(sp *Spool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos, err := s.position()
	if err != nil || pos.off == 0 {
		return 0, err
	}
	head, scrubs, err := purgedHead(sp.path, pos.off)
	if err != nil || len(scrubs) == 0 {
		return 0, err
	}
	if err := appendLines(filepath.Join(s.cfg.Dir, ScrubFile), scrubs); err != nil {
		return 0, err
	}
	if err := sp.replacePrefix(pos.off, head); err != nil {
		return 0, err
	}
	pos.off = int64(len(head))
	return len(scrubs), s.setPosition(pos)
}

// purgedHead reads the spool's first n bytes and returns them with the
// clear prompts removed, and the scrubs of the lines it rewrote.
func purgedHead(spool string, n int64) ([]byte, []Scrub, error) {
	f, err := os.Open(spool)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var head bytes.Buffer
	var scrubs []Scrub
	err = eachLine(f, func(line []byte, off int64) error {
		if off >= n {
			return errStop
		}
		if bytes.Contains(line, []byte(`"prompt":`)) {
			var seq uint64
			out, hash, err := auditchain.Rewrite(line, func(fields map[string]json.RawMessage) error {
				if _, ok := fields["prompt"]; !ok {
					return errStop
				}
				delete(fields, "prompt")
				fields["promptScrubbed"] = json.RawMessage(`"purged"`)
				return json.Unmarshal(fields["seq"], &seq)
			})
			if err == nil {
				line = out
				scrubs = append(scrubs, Scrub{Seq: seq, Hash: hash, Line: lineSHA256(out)})
			}
		}
		head.Write(line)
		head.WriteByte('\n')
		return nil
	})
	if err != nil && err != errStop {
		return nil, nil, err
	}
	return head.Bytes(), scrubs, nil
}

// errStop ends a scan early.
var errStop = errors.New("stop")

// readLines reads the JSON lines of path; none when it does not exist.
// A line that does not decode is tampering.
func readLines[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			return nil, fmt.Errorf("%w: %s line %d: %v", ErrTampered, filepath.Base(path), len(out)+1, err)
		}
		out = append(out, v)
	}
	return out, sc.Err()
}

// appendLines appends each of vs as a JSON line to path and syncs it.
func appendLines[T any](path string, vs []T) error {
	var b bytes.Buffer
	for _, v := range vs {
		line, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(append(line, '\n'))
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	_, err = f.Write(b.Bytes())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("audit %s: %w", filepath.Base(path), err)
	}
	return nil
}
