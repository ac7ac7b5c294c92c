package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// auditRecs returns n records a second apart, alternating users, models
// and decisions.
func auditRecs(n int) []*store.AuditRecord {
	var recs []*store.AuditRecord
	for i := range n {
		recs = append(recs, &store.AuditRecord{ID: fmt.Sprintf("r%03d", i), NodeID: []string{"n_1", "n_2"}[i%2],
			Time: at(time.Duration(i) * time.Second), UserID: []string{"u_a", "u_b", "u_c"}[i%3],
			Login: []string{"a@x", "b@x", "c@x"}[i%3], DeviceID: "d_1", Model: []string{"llama", "qwen"}[i%2],
			API: "chat", Decision: []string{"allow", "allow", "deny"}[i%3], Reason: "r", Grant: "g",
			TokensIn: int64(i), TokensOut: 2 * int64(i), LatencyMS: 7, Status: 200,
			Body: []byte(fmt.Sprintf(`{"i":%d}`, i))})
	}
	return recs
}

func testAudit(t *testing.T, s Store) {
	c := ctx(t)
	recs := auditRecs(5)
	n, err := s.InsertAudit(c, recs[:3])
	must(t, err)
	if n != 3 {
		t.Fatalf("inserted %d, want 3", n)
	}
	// Redelivery: the known ones are skipped, the new ones land.
	dup := *recs[0]
	dup.Decision = "changed"
	n, err = s.InsertAudit(c, append([]*store.AuditRecord{&dup}, recs[1:]...))
	must(t, err)
	if n != 2 {
		t.Fatalf("inserted %d on redelivery, want 2", n)
	}
	got, err := s.Audit(c, store.AuditFilter{})
	must(t, err)
	same(t, got, []*store.AuditRecord{recs[4], recs[3], recs[2], recs[1], recs[0]}, "all records, newest first")
	one, err := s.AuditRecord(c, recs[2].ID)
	must(t, err)
	same(t, one, recs[2], "one record by id")
	_, err = s.AuditRecord(c, "no-such-record")
	wantErr(t, err, store.ErrNotFound, "unknown audit record")
	n, err = s.InsertAudit(c, nil)
	must(t, err)
	if n != 0 {
		t.Fatalf("inserted %d of none", n)
	}
	if _, err := s.InsertAudit(c, []*store.AuditRecord{{ID: "no time"}}); err == nil {
		t.Fatal("record without time accepted")
	}
}

func testAuditFilter(t *testing.T, s Store) {
	c := ctx(t)
	recs := auditRecs(30)
	_, err := s.InsertAudit(c, recs)
	must(t, err)
	ids := func(f store.AuditFilter) []string {
		t.Helper()
		got, err := s.Audit(c, f)
		must(t, err)
		var out []string
		for _, r := range got {
			out = append(out, r.ID)
		}
		return out
	}
	sec := func(i int) time.Time { return at(time.Duration(i) * time.Second) }
	for _, tc := range []struct {
		name string
		f    store.AuditFilter
		want []string
	}{
		{"limit", store.AuditFilter{Limit: 2}, []string{"r029", "r028"}},
		{"user", store.AuditFilter{UserID: "u_b", Limit: 3}, []string{"r028", "r025", "r022"}},
		{"login", store.AuditFilter{Login: "c@x", Limit: 2}, []string{"r029", "r026"}},
		{"model", store.AuditFilter{Model: "qwen", Limit: 2}, []string{"r029", "r027"}},
		{"node", store.AuditFilter{NodeID: "n_1", Limit: 2}, []string{"r028", "r026"}},
		{"decision", store.AuditFilter{Decision: "deny", Limit: 2}, []string{"r029", "r026"}},
		{"since until", store.AuditFilter{Since: sec(3), Until: sec(6)}, []string{"r005", "r004", "r003"}},
		{"before", store.AuditFilter{Before: "r003"}, []string{"r002", "r001", "r000"}},
		{"combined", store.AuditFilter{Model: "llama", Decision: "deny", Since: sec(10)}, []string{"r026", "r020", "r014"}},
		{"no match", store.AuditFilter{UserID: "u_z"}, nil},
	} {
		same(t, ids(tc.f), tc.want, tc.name)
	}
	// Paging through everything five at a time visits each record once.
	var all []string
	for f := (store.AuditFilter{Limit: 5}); ; {
		page := ids(f)
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		f.Before = page[len(page)-1]
	}
	if len(all) != 30 || all[0] != "r029" || all[29] != "r000" {
		t.Fatalf("paging: %v", all)
	}
	_, err = s.Audit(c, store.AuditFilter{Before: "r999"})
	wantErr(t, err, store.ErrNotFound, "page before an unknown record")
}

// testAuditCursor: the ingestion cursor returns records in the order they
// were stored, so a record shipped late with an old Time still comes
// after the cursor a poller holds; redelivery takes no number.
func testAuditCursor(t *testing.T, s Store) {
	c := ctx(t)
	recs := auditRecs(6)
	_, err := s.InsertAudit(c, recs[3:])
	must(t, err)
	first, err := s.AuditAfter(c, 0, 0)
	must(t, err)
	same(t, seqIDs(first), []string{"r003", "r004", "r005"}, "first pull")
	cursor := first[len(first)-1].Seq
	// r000..r002 are older by event time but shipped now; r004 again.
	_, err = s.InsertAudit(c, append([]*store.AuditRecord{recs[4]}, recs[:3]...))
	must(t, err)
	late, err := s.AuditAfter(c, cursor, 2)
	must(t, err)
	same(t, seqIDs(late), []string{"r000", "r001"}, "late records after the cursor")
	rest, err := s.AuditAfter(c, late[1].Seq, 10)
	must(t, err)
	same(t, seqIDs(rest), []string{"r002"}, "the rest")
	for i, r := range append(append(first, late...), rest...) {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %s has seq %d, want %d", r.ID, r.Seq, i+1)
		}
	}
	none, err := s.AuditAfter(c, rest[0].Seq, 10)
	must(t, err)
	if len(none) != 0 {
		t.Fatalf("past the end: %d records", len(none))
	}
}

// testAuditCursorConcurrent: inserts racing from many goroutines get
// distinct numbers, and a reader following the cursor sees every record
// exactly once.
func testAuditCursorConcurrent(t *testing.T, s Store) {
	c := ctx(t)
	const writers, each = 4, 25
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			var err error
			for i := range each {
				r := &store.AuditRecord{ID: fmt.Sprintf("w%d-%d", w, i), Time: at(0), Body: []byte("{}")}
				if _, e := s.InsertAudit(c, []*store.AuditRecord{r}); e != nil && err == nil {
					err = e
				}
			}
			errs <- err
		}()
	}
	seen := map[string]bool{}
	var cursor int64
	done := 0
	for done < writers || len(seen) < writers*each {
		select {
		case err := <-errs:
			must(t, err)
			done++
		default:
		}
		page, err := s.AuditAfter(c, cursor, 7)
		must(t, err)
		for _, r := range page {
			if seen[r.ID] || r.Seq <= cursor {
				t.Fatalf("record %s (seq %d) seen twice or out of order after %d", r.ID, r.Seq, cursor)
			}
			seen[r.ID] = true
			cursor = r.Seq
		}
		if done == writers && len(page) == 0 && len(seen) < writers*each {
			t.Fatalf("cursor at %d saw %d of %d records", cursor, len(seen), writers*each)
		}
	}
}

func seqIDs(recs []*store.AuditRecord) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

// testSinkCursors: heads, the admin trail in ID order, and cursors that
// only move from where they are.
func testSinkCursors(t *testing.T, s Store) {
	c := ctx(t)
	_, err := s.InsertAudit(c, auditRecs(4))
	must(t, err)
	for _, a := range []string{"a.one", "a.two", "a.three"} {
		must(t, s.LogAdminAction(c, &store.AdminAction{Actor: "u_x", Action: a}))
	}
	recs, acts, err := s.AuditHeads(c)
	must(t, err)
	if recs != 4 || acts != 3 {
		t.Fatalf("heads %d records, %d actions; want 4, 3", recs, acts)
	}
	as, err := s.AdminActionsAfter(c, 1, 10)
	must(t, err)
	if len(as) != 2 || as[0].Action != "a.two" || as[1].Action != "a.three" {
		t.Fatalf("admin actions after 1: %+v", as)
	}
	at, err := s.SinkCursor(c, "hook", "records")
	must(t, err)
	if at != 0 {
		t.Fatalf("new cursor at %d", at)
	}
	must(t, s.AdvanceSinkCursor(c, "hook", "records", 0, 3))
	must(t, s.AdvanceSinkCursor(c, "hook", "records", 3, 4))
	wantErr(t, s.AdvanceSinkCursor(c, "hook", "records", 3, 9), store.ErrConflict, "a stale mover")
	must(t, s.AdvanceSinkCursor(c, "other", "records", 0, 1))
	if at, err = s.SinkCursor(c, "hook", "records"); err != nil || at != 4 {
		t.Fatalf("cursor at %d (%v), want 4", at, err)
	}
}
