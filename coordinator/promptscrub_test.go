package coordinator

import (
	"bytes"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/auditchain"
)

// TestPromptMigration: records a node of before kept with the prompt in
// clear are rewritten: encrypted to the person's key (the export still
// reads it), removed for an erased person and a tagged caller; a record
// failing its own hash is left; the chain check passes across the
// rewritten records through their sealed scrubs, and reports one whose
// body was changed afterwards; retention then deletes rewritten records
// under its checkpoints; a second run rewrites nothing.
func TestPromptMigration(t *testing.T) {
	const day = 24 * time.Hour
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.AuditRetention = 30 * day })
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, testPolicy)
	node, res := tc.enrollNode(t, tok, "llama")
	w := node.watch(t)
	alice := tc.addPerson(t, "alice@example.com", false)
	tc.signIn(t, alice, "laptop")
	aliceID, _ := aliceKey(t, w, true)
	bob := tc.addPerson(t, "bob@example.com", false)
	tc.signIn(t, bob, "laptop")
	bobU, err := findPerson(t.Context(), tc.store, "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if status, body := tc.admin(t, tok, "POST", "/users/"+bobU.ID+"/erase", `{"reason":"request #9"}`); status != 204 {
		t.Fatalf("erase bob: %d %s", status, body)
	}

	old := tc.clock.Now().Add(-40 * day).UTC().Format(time.RFC3339)
	recs := []string{
		fmt.Sprintf(`"time":%q,"userId":%q,"prompt":{"messages":"alice's old prompt"}`, old, aliceID),
		fmt.Sprintf(`"time":%q,"userId":%q,"prompt":{"messages":"bob's old prompt"}`, old, bobU.ID),
		fmt.Sprintf(`"time":%q,"tags":["tag:ci"],"prompt":{"messages":"a robot's prompt"}`, old),
		fmt.Sprintf(`"time":%q,"userId":%q,"promptSealed":"c2VhbGVk"`, tc.clock.Now().UTC().Format(time.RFC3339), aliceID),
		fmt.Sprintf(`"time":%q,"userId":%q,"prompt":{"messages":"edited in transit"}`, tc.clock.Now().UTC().Format(time.RFC3339), aliceID),
	}
	var lines []string
	prev := ""
	for i, fields := range recs {
		var line bytes.Buffer
		prev = auditchain.Seal(&line, fmt.Appendf(nil, `{"id":"m%d","seq":%d,%s,"decision":"allow","prev":%q}`, i+1, i+1, fields, prev))
		lines = append(lines, line.String())
	}
	lines[4] = strings.Replace(lines[4], "edited in transit", "edited in transiT", 1)
	if status, body := shipAudit(t, tc.URL, string(res.Credential), "["+strings.Join(lines, ",")+"]"); status != 200 {
		t.Fatalf("ship: %d %s", status, body)
	}

	sealed, purged, err := tc.scrubPrompts(t.Context())
	if err != nil || sealed != 1 || purged != 2 {
		t.Fatalf("migration: %d sealed, %d purged, %v; want 1 and 2", sealed, purged, err)
	}
	for id, want := range map[string]string{"m1": `"promptScrubbed":"sealed"`, "m2": `"promptScrubbed":"purged"`, "m3": `"promptScrubbed":"purged"`, "m5": "edited in transiT"} {
		r, err := tc.store.AuditRecord(t.Context(), id)
		if err != nil || !strings.Contains(string(r.Body), want) || id != "m5" && strings.Contains(string(r.Body), `"prompt":`) {
			t.Errorf("record %s after the migration: %s, %v; want %s and no clear prompt", id, r.Body, err, want)
		}
	}
	exp := exportOf(t, tc, tok, "alice@example.com")
	if len(exp.Records) != 3 || string(exp.Records[2].Prompt) != `{"messages":"alice's old prompt"}` {
		t.Fatalf("alice's export after the migration (newest first): %+v", exp.Records)
	}
	nodeID := string(res.DeviceID)
	st := chainOfNode(t, tc, nodeID)
	if st.Records != 5 || len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "record 5 (m5)") {
		t.Fatalf("chain after the migration: %+v, want only m5's own break", st)
	}
	if again, purgedAgain, err := tc.scrubPrompts(t.Context()); err != nil || again+purgedAgain != 0 {
		t.Fatalf("second run: %d %d %v, want nothing", again, purgedAgain, err)
	}

	// A rewritten record changed afterwards is a break.
	r, _ := tc.store.AuditRecord(t.Context(), "m2")
	changed := bytes.Replace(r.Body, []byte(`"decision":"allow"`), []byte(`"decision":"deny"`), 1)
	setBody(t, tc, "m2", changed)
	st = chainOfNode(t, tc, nodeID)
	if len(st.Problems) != 2 || !strings.Contains(st.Problems[0], "record 2 (m2)") || !strings.Contains(st.Problems[0], "forged or altered") {
		t.Fatalf("chain after m2 was changed: %+v", st)
	}
	setBody(t, tc, "m2", r.Body)

	// Retention deletes the rewritten records (m1–m3, 40 days old) under
	// a checkpoint; the chain still verifies up to m5's break.
	run, err := tc.applyRetention(t.Context())
	if err != nil || run.Deleted != 3 {
		t.Fatalf("retention after the migration: %+v, %v; want m1–m3 deleted", run, err)
	}
	st = chainOfNode(t, tc, nodeID)
	if st.Records != 2 || st.Removed != 3 || len(st.Problems) != 1 {
		t.Fatalf("chain after retention: %+v", st)
	}
	if _, err := tc.store.AuditScrub(t.Context(), "m1"); err == nil {
		t.Error("a deleted record's scrub is still held")
	}
}

// setBody changes record id's body behind the coordinator's back, as
// someone with write access to the SQLite database could.
func setBody(t *testing.T, tc *testCoord, id string, body []byte) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(tc.dir, "moat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE audit SET body = ? WHERE id = ?", body, id); err != nil {
		t.Fatal(err)
	}
}
