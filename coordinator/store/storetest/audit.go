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
