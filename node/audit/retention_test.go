package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// retentionRig is a spool with a shipper without its loop (every round
// is called by the test) to a counting receiver.
type retentionRig struct {
	t   *testing.T
	dir string
	sp  *Spool
	sh  *Shipper
	rc  *receiver
	cfg ShipperConfig
	now time.Time
}

func newRetentionRig(t *testing.T) *retentionRig {
	r := &retentionRig{t: t, dir: t.TempDir(), rc: &receiver{ids: map[string]int{}}, now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	srv := httptest.NewServer(r.rc)
	t.Cleanup(srv.Close)
	var err error
	if r.sp, err = Open(r.dir, Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.sp.Close() })
	r.cfg = ShipperConfig{Dir: r.dir, URL: srv.URL, Token: "tok", Client: srv.Client(), Interval: time.Hour}
	r.restart()
	return r
}

// restart makes a new shipper on the same directory, as a restarted
// node would.
func (r *retentionRig) restart() {
	var err error
	if r.sh, err = newShipper(r.cfg); err != nil {
		r.t.Fatal(err)
	}
}

// add appends n records made age ago, for grant.
func (r *retentionRig) add(n int, age time.Duration, grant string) {
	for range n {
		if err := r.sp.Append(&Record{Time: r.now.Add(-age), Login: "alice@example.com", Decision: DecisionAllow, Grant: grant, Status: 200}); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *retentionRig) ship() {
	if _, err := r.sh.ShipNow(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

// keep30d keeps records 30 days, and those of grants[9] forever.
func keep30d(rec *Record) time.Duration {
	if rec.Grant == "grants[9]" {
		return 0
	}
	return 30 * 24 * time.Hour
}

func (r *retentionRig) retain() Checkpoint {
	cp, err := r.sh.Retain(r.sp, r.now, keep30d)
	if err != nil {
		r.t.Fatal(err)
	}
	return cp
}

func (r *retentionRig) verify(records int, deleted uint64, checkpoints int) {
	r.t.Helper()
	rep, err := VerifyReport(r.dir)
	if err != nil || rep.Records != records || rep.Deleted != deleted || rep.Checkpoints != checkpoints {
		r.t.Fatalf("VerifyReport = %+v, %v; want %d records, %d deleted under %d checkpoints", rep, err, records, deleted, checkpoints)
	}
}

// TestSpoolRetention: retention deletes only delivered records older
// than their retention, from the spool's start, under checkpoints that
// keep Verify passing; records not yet delivered stay until they are;
// shipping after it and after a restart neither loses nor resends a
// record; appends continue the chain.
func TestSpoolRetention(t *testing.T) {
	const day = 24 * time.Hour
	r := newRetentionRig(t)
	r.add(4, 40*day, "grants[0]")
	r.ship()
	r.add(2, 40*day, "grants[0]") // expired but not delivered
	r.add(2, day, "grants[0]")
	cp := r.retain()
	if cp.First != 1 || cp.Last != 4 || cp.Prev != "" || cp.Head == "" || !cp.Time.Equal(r.now) {
		t.Fatalf("checkpoint %+v, want records 1–4", cp)
	}
	r.verify(4, 4, 1)
	r.ship()
	if u, d := r.rc.count(); u != 8 || d != 8 {
		t.Fatalf("receiver: %d unique in %d deliveries after retention, want 8 exactly once", u, d)
	}
	cp2 := r.retain()
	if cp2.First != 5 || cp2.Last != 6 || cp2.Prev != cp.Head {
		t.Fatalf("second checkpoint %+v, want records 5–6 chained to the first", cp2)
	}
	r.verify(2, 6, 2)
	r.add(1, 0, "grants[0]")
	r.verify(3, 6, 2)
	r.restart()
	r.ship()
	if u, d := r.rc.count(); u != 9 || d != 9 {
		t.Fatalf("receiver: %d unique in %d deliveries after a restart, want 9 exactly once", u, d)
	}
	if cp := r.retain(); cp.Last != 0 {
		t.Fatalf("nothing expired, yet %+v", cp)
	}
	if err := Verify(r.dir); err != nil {
		t.Fatal(err)
	}
}

// TestSpoolRetentionStopsAtKeptRecord: the spool is cut at its start
// only, so a record kept forever (or failing its hash) holds back the
// expired ones after it.
func TestSpoolRetentionStopsAtKeptRecord(t *testing.T) {
	const old = 40 * 24 * time.Hour
	r := newRetentionRig(t)
	r.add(2, old, "grants[0]")
	r.add(1, old, "grants[9]") // kept forever
	r.add(2, old, "grants[0]")
	r.ship()
	if cp := r.retain(); cp.First != 1 || cp.Last != 2 {
		t.Fatalf("checkpoint %+v, want records 1–2 only", cp)
	}
	r.verify(3, 2, 1)

	// A record edited in place: retention stops before it and Verify
	// still shows the break.
	r2 := newRetentionRig(t)
	r2.add(4, old, "grants[0]")
	r2.ship()
	path := filepath.Join(r2.dir, SpoolFile)
	b, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines[2] = bytes.Replace(lines[2], []byte(`"status":200`), []byte(`"status":201`), 1)
	os.WriteFile(path, bytes.Join(lines, nil), 0o600)
	if cp := r2.retain(); cp.Last != 2 {
		t.Fatalf("checkpoint %+v, want records 1–2: record 3 fails its hash", cp)
	}
	if err := Verify(r2.dir); !errors.Is(err, ErrTampered) {
		t.Fatalf("Verify after retention stopped at a break: %v, want it still tampered", err)
	}
}

// TestSpoolRetentionTamperedCheckpoints: deleting the checkpoints, or
// changing one, is a break.
func TestSpoolRetentionTamperedCheckpoints(t *testing.T) {
	r := newRetentionRig(t)
	r.add(3, 40*24*time.Hour, "grants[0]")
	r.ship()
	r.add(1, 0, "grants[0]")
	r.retain()
	cpPath := filepath.Join(r.dir, CheckpointFile)
	orig, _ := os.ReadFile(cpPath)
	os.WriteFile(cpPath, bytes.Replace(orig, []byte(`"head":"`), []byte(`"head":"00`), 1), 0o600)
	if err := Verify(r.dir); !errors.Is(err, ErrTampered) {
		t.Fatalf("forged checkpoint head: %v", err)
	}
	os.Remove(cpPath)
	if err := Verify(r.dir); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "no checkpoint covers records 1–3") {
		t.Fatalf("checkpoints deleted: %v", err)
	}
}

// TestSpoolRetentionCrashBeforeDelete: a checkpoint written by a run that
// stopped before deleting leaves a spool that verifies, and the next run
// deletes the run it recorded.
func TestSpoolRetentionCrashBeforeDelete(t *testing.T) {
	r := newRetentionRig(t)
	r.add(3, 40*24*time.Hour, "grants[0]")
	r.ship()
	cut, _, err := expiredRun(r.sp.path, nil, nil, 3, r.now, keep30d)
	if err != nil || cut.Last != 3 {
		t.Fatalf("expiredRun = %+v, %v", cut, err)
	}
	if err := appendLines(filepath.Join(r.dir, CheckpointFile), []Checkpoint{cut}); err != nil {
		t.Fatal(err)
	}
	r.verify(3, 0, 1)
	if cp := r.retain(); cp.Last != 0 {
		t.Fatalf("a new checkpoint %+v for a run already recorded", cp)
	}
	r.add(1, 0, "grants[0]")
	r.verify(1, 3, 1)
}

// TestShippedFileFromBefore: a ShippedFile holding an offset alone, as
// nodes before retention wrote it, is read and rewritten with its seq.
func TestShippedFileFromBefore(t *testing.T) {
	r := newRetentionRig(t)
	r.add(2, 0, "grants[0]")
	r.ship()
	r.sh.Close()
	off, _ := storedOffset(r.dir)
	os.WriteFile(filepath.Join(r.dir, ShippedFile), []byte("12\n"), 0o600)
	if _, err := (&Shipper{cfg: r.cfg}).position(); err == nil || !strings.Contains(err.Error(), "not the end of a record") {
		t.Fatalf("an offset inside a record: %v", err)
	}
	os.WriteFile(filepath.Join(r.dir, ShippedFile), fmt.Appendf(nil, "%d\n", off), 0o600)
	pos, err := (&Shipper{cfg: r.cfg}).position()
	if err != nil || pos.seq != 2 || pos.off != off {
		t.Fatalf("position = %+v, %v; want seq 2 at %d", pos, err, off)
	}
}

// TestSpoolRetentionWhileAppending: records appended while retention
// copies the spool are all kept, in order, and the chain verifies.
func TestSpoolRetentionWhileAppending(t *testing.T) {
	r := newRetentionRig(t)
	r.add(500, 40*24*time.Hour, "grants[0]")
	r.ship()
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.add(300, 0, "grants[0]")
	}()
	cp := r.retain()
	<-done
	if cp.First != 1 || cp.Last != 500 {
		t.Fatalf("checkpoint %+v, want records 1–500", cp)
	}
	r.verify(300, 500, 1)
	r.ship()
	if u, d := r.rc.count(); u != 800 || d != 800 {
		t.Fatalf("receiver: %d unique in %d deliveries, want 800 exactly once", u, d)
	}
}
