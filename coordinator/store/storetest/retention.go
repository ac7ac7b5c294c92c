package storetest

import (
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// testAuditRetention: expired records page by seq; a cut deletes the
// given records of its node only and stores its checkpoints; a cut that
// replaces a checkpoint already gone changes nothing.
func testAuditRetention(t *testing.T, s Store) {
	c := ctx(t)
	recs := auditRecs(6) // r000..r005, a second apart, nodes n_1 and n_2 alternating
	_, err := s.InsertAudit(c, recs)
	must(t, err)
	page, err := s.ExpiredAudit(c, at(4*time.Second), 0, 2)
	must(t, err)
	same(t, ids(page), []string{"r000", "r001"}, "first page of expired records")
	page, err = s.ExpiredAudit(c, at(4*time.Second), page[1].Seq, 10)
	must(t, err)
	same(t, ids(page), []string{"r002", "r003"}, "second page (r004 is not before the cut-off)")

	cut := &store.AuditCut{ID: "n_1:1:aa", NodeID: "n_1", First: 1, Last: 2, Prev: "", Head: "aa",
		Time: at(time.Hour), Seal: []byte{1, 2, 3}}
	// r001 belongs to n_2: a cut of n_1 leaves it.
	must(t, s.CutAudit(c, "n_1", []string{"r000", "r002", "r001"}, nil, []*store.AuditCut{cut}))
	left, err := s.Audit(c, store.AuditFilter{})
	must(t, err)
	same(t, ids(left), []string{"r005", "r004", "r003", "r001"}, "records after the cut")
	cuts, err := s.AuditCuts(c, "n_1")
	must(t, err)
	same(t, cuts, []*store.AuditCut{cut}, "n_1's checkpoints")

	wider := *cut
	wider.ID, wider.Last, wider.Head = "n_1:1:bb", 3, "bb"
	err = s.CutAudit(c, "n_1", []string{"r004"}, []string{"n_1:1:aa", "gone"}, []*store.AuditCut{&wider})
	wantErr(t, err, store.ErrConflict, "replacing a checkpoint that is gone")
	cuts, err = s.AuditCuts(c, "")
	must(t, err)
	same(t, cuts, []*store.AuditCut{cut}, "checkpoints after the refused cut")
	if _, err := s.AuditRecord(c, "r004"); err != nil {
		t.Fatalf("r004 after the refused cut: %v", err)
	}
	must(t, s.CutAudit(c, "n_1", []string{"r004"}, []string{"n_1:1:aa"}, []*store.AuditCut{&wider}))
	cuts, err = s.AuditCuts(c, "")
	must(t, err)
	same(t, cuts, []*store.AuditCut{&wider}, "the checkpoint replaced")
}

// testAuditScrub: a record's body is replaced with its scrub stored,
// only while the body is still the one the caller read; a second scrub
// of it changes nothing; a cut deletes the scrub with its record.
func testAuditScrub(t *testing.T, s Store) {
	c := ctx(t)
	recs := auditRecs(2)
	_, err := s.InsertAudit(c, recs)
	must(t, err)
	sc := &store.AuditScrub{ID: "r000", NodeID: recs[0].NodeID, Hash: "aa", BodySHA256: "bb", Time: at(time.Hour), Seal: []byte{1, 2}}
	must(t, s.ScrubAudit(c, recs[0].Body, []byte(`{"rewritten":true}`), sc))
	got, err := s.AuditRecord(c, "r000")
	must(t, err)
	same(t, string(got.Body), `{"rewritten":true}`, "the rewritten body")
	back, err := s.AuditScrub(c, "r000")
	must(t, err)
	same(t, back, sc, "the scrub")
	again := *sc
	err = s.ScrubAudit(c, recs[0].Body, []byte(`{"again":true}`), &again)
	wantErr(t, err, store.ErrConflict, "a scrub of a body already rewritten")
	_, err = s.AuditScrub(c, "r001")
	wantErr(t, err, store.ErrNotFound, "the scrub of a record never rewritten")
	must(t, s.CutAudit(c, recs[0].NodeID, []string{"r000"}, nil, nil))
	_, err = s.AuditScrub(c, "r000")
	wantErr(t, err, store.ErrNotFound, "the scrub of a deleted record")
}

func ids(recs []*store.AuditRecord) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	return out
}

// testPersonKeys: the first key stored for a person stays; erasing
// empties it and keeps the first erasure time; a person erased before
// having a key gets none afterwards.
func testPersonKeys(t *testing.T, s Store) {
	c := ctx(t)
	_, err := s.PersonKey(c, "u_a")
	wantErr(t, err, store.ErrNotFound, "a person without a key")
	first := &store.PersonKey{UserID: "u_a", Public: []byte("pub-1"), Private: []byte("sealed-1"), Created: at(0)}
	got, err := s.AddPersonKey(c, first)
	must(t, err)
	same(t, got, first, "the key stored")
	got, err = s.AddPersonKey(c, &store.PersonKey{UserID: "u_a", Public: []byte("pub-2"), Private: []byte("sealed-2"), Created: at(time.Second)})
	must(t, err)
	same(t, got, first, "a second key for the same person (the first stays)")

	must(t, s.ErasePersonKey(c, "u_a", at(time.Hour)))
	must(t, s.ErasePersonKey(c, "u_a", at(2*time.Hour)))
	must(t, s.ErasePersonKey(c, "u_b", at(time.Hour)))
	got, err = s.AddPersonKey(c, &store.PersonKey{UserID: "u_b", Public: []byte("pub"), Private: []byte("sealed"), Created: at(3 * time.Hour)})
	must(t, err)
	if len(got.Public) != 0 || len(got.Private) != 0 || !got.Erased.Equal(at(time.Hour)) {
		t.Fatalf("a key for a person erased before: %+v", got)
	}
	all, err := s.PersonKeys(c)
	must(t, err)
	if len(all) != 2 || all[0].UserID != "u_a" || len(all[0].Public) != 0 || len(all[0].Private) != 0 || !all[0].Erased.Equal(at(time.Hour)) || !all[0].Created.Equal(at(0)) {
		t.Fatalf("keys after erasure: %+v", all)
	}
}
