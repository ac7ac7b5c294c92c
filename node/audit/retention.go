package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moatmesh/moat/mesh/auditchain"
)

// CheckpointFile lists, in the spool directory, one Checkpoint a line,
// oldest first: the runs of records retention deleted from the spool's
// start. Verify continues the chain from them.
const CheckpointFile = "checkpoints.jsonl"

// APIRetention is the API of the event record a node writes after
// retention deleted records; it carries the checkpoint to the
// coordinator in the chain itself.
const APIRetention = "node.retention"

// Checkpoint records a run of records deleted from the spool's start:
// written (and synced) before they are deleted, so that the record after
// the run still chains to something Verify can check.
type Checkpoint struct {
	First uint64    `json:"first"` // seq of the first record deleted
	Last  uint64    `json:"last"`  // seq of the last
	Prev  string    `json:"prev"`  // the hash First chained to; "" when First is 1
	Head  string    `json:"head"`  // Last's hash: what the record after it chains to
	Time  time.Time `json:"time"`  // when retention ran
}

// RetentionFunc says how long a record is kept after its Time; 0 or less
// keeps it.
type RetentionFunc func(*Record) time.Duration

// Retain deletes from the start of sp (the spool in the shipper's Dir)
// the records that were delivered and are older at now than keep says.
// It stops at the first record that is not: not delivered yet, not
// expired, or failing its own hash or chain link (a break stays for
// Verify to show). The run's Checkpoint is appended to CheckpointFile and
// synced before anything is deleted; a run recorded by a Retain that
// crashed before deleting it is deleted now. It returns the new
// checkpoint, zero when it deleted nothing new.
func (s *Shipper) Retain(sp *Spool, now time.Time, keep RetentionFunc) (Checkpoint, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos, err := s.position()
	if err != nil {
		return Checkpoint{}, err
	}
	cps, err := ReadCheckpoints(s.cfg.Dir)
	if err != nil {
		return Checkpoint{}, err
	}
	scrubs, err := readScrubs(s.cfg.Dir)
	if err != nil {
		return Checkpoint{}, err
	}
	cut, end, err := expiredRun(sp.path, cps, scrubs, pos.seq, now, keep)
	if err != nil || end == 0 {
		return Checkpoint{}, err
	}
	if cut.Last != 0 {
		cut.Time = now.UTC()
		if err := appendLines(filepath.Join(s.cfg.Dir, CheckpointFile), []Checkpoint{cut}); err != nil {
			return Checkpoint{}, err
		}
	}
	if err := sp.dropPrefix(end); err != nil {
		return Checkpoint{}, err
	}
	pos.off -= end
	if err := s.setPosition(pos); err != nil {
		return Checkpoint{}, err
	}
	return cut, nil
}

// expiredRun scans the spool's start and returns the new run to delete
// (zero when only an already recorded run is left to delete) and the
// offset after everything to delete.
func expiredRun(spool string, cps []Checkpoint, scrubs map[uint64]Scrub, shipped uint64, now time.Time, keep RetentionFunc) (cut Checkpoint, end int64, err error) {
	f, err := os.Open(spool)
	if errors.Is(err, os.ErrNotExist) {
		return cut, 0, nil
	}
	if err != nil {
		return cut, 0, err
	}
	defer f.Close()
	var recorded Checkpoint // the last run already checkpointed
	if len(cps) > 0 {
		recorded = cps[len(cps)-1]
	}
	var prev auditchain.Link
	stop := errStop
	err = eachLine(f, func(line []byte, off int64) error {
		rec, hash, err := openLine(line, scrubs)
		if err != nil {
			return stop
		}
		next := auditchain.Link{Seq: rec.Seq, Prev: rec.Prev, Hash: hash}
		if off == 0 {
			if prev, err = startLink(rec, cps); err != nil {
				return stop
			}
		}
		if auditchain.Follows(prev, next) != nil {
			return stop
		}
		switch {
		case rec.Seq <= recorded.Last: // checkpointed by a run that did not finish
			if rec.Seq == recorded.Last && hash != recorded.Head {
				return stop
			}
		case rec.Seq > shipped, keep(rec) <= 0, now.Sub(rec.Time) < keep(rec):
			return stop
		default:
			if cut.First == 0 {
				cut.First, cut.Prev = rec.Seq, rec.Prev
			}
			cut.Last, cut.Head = rec.Seq, hash
		}
		end, prev = off+int64(len(line))+1, next
		return nil
	})
	if err != nil && err != stop {
		return Checkpoint{}, 0, err
	}
	return cut, end, nil
}

// startLink is the link the spool's first record rec must follow: none
// for record 1, else the checkpoint of the run just before it.
func startLink(rec *Record, cps []Checkpoint) (auditchain.Link, error) {
	if rec.Seq == 1 {
		return auditchain.Link{}, nil
	}
	for _, cp := range cps {
		if cp.Last+1 == rec.Seq {
			return auditchain.Link{Seq: cp.Last, Hash: cp.Head}, nil
		}
	}
	return auditchain.Link{}, fmt.Errorf("%w: the spool starts at record %d and no checkpoint covers records 1–%d", ErrTampered, rec.Seq, rec.Seq-1)
}

// ReadCheckpoints returns the checkpoints of the spool in dir, oldest
// first; none when retention never ran.
func ReadCheckpoints(dir string) ([]Checkpoint, error) {
	return readLines[Checkpoint](filepath.Join(dir, CheckpointFile))
}

// checkCheckpoints checks that the runs follow each other from record 1.
func checkCheckpoints(cps []Checkpoint) error {
	var last Checkpoint
	for i, cp := range cps {
		if cp.First != last.Last+1 || cp.Prev != last.Head || cp.Last < cp.First {
			return fmt.Errorf("%w: %s line %d (records %d–%d) does not follow the run before it", ErrTampered, CheckpointFile, i+1, cp.First, cp.Last)
		}
		last = cp
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
