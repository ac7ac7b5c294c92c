package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/auditsink"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/auditchain"
	"github.com/moatmesh/moat/ui"
)

// retentionPolicy keeps grants[0]'s records 7 days; everything else
// follows Config.AuditRetention.
const retentionPolicy = `{
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["alice@example.com"], "models": ["llama"], "audit": { "retention": "7d" } } ],
}`

// chainRec is one record to ship: its age, its grant, and whether it is
// edited after it was sealed.
type chainRec struct {
	age    time.Duration
	grant  string
	edited bool
}

// shipChain ships recs as one node's spool would, ids prefix+seq, and
// returns the lines.
func shipChain(t *testing.T, tc *testCoord, cred, prefix string, recs []chainRec) {
	t.Helper()
	var lines []string
	prev := ""
	for i, r := range recs {
		body, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("%s%d", prefix, i+1), "seq": i + 1,
			"time": tc.clock.Now().Add(-r.age).UTC().Format(time.RFC3339Nano), "login": "alice@example.com",
			"grant": r.grant, "decision": "allow", "tokensIn": 3, "tokensOut": 7, "prev": prev})
		var line bytes.Buffer
		prev = auditchain.Seal(&line, body)
		l := line.String()
		if r.edited {
			l = strings.Replace(l, `"tokensOut":7`, `"tokensOut":1`, 1)
		}
		lines = append(lines, l)
	}
	if status, body := shipAudit(t, tc.URL, cred, "["+strings.Join(lines, ",")+"]"); status != 200 {
		t.Fatalf("ship: %d %s", status, body)
	}
}

// chainOfNode is the chain check of node id.
func chainOfNode(t *testing.T, tc *testCoord, id string) ui.ChainState {
	t.Helper()
	states, err := uiBackend{s: tc.Server}.AuditChains(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		if st.NodeID == id {
			return st
		}
	}
	t.Fatalf("no chain state for node %s in %+v", id, states)
	return ui.ChainState{}
}

func heldIDs(t *testing.T, tc *testCoord, node string) string {
	t.Helper()
	recs, err := tc.store.Audit(t.Context(), store.AuditFilter{NodeID: node, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append([]string{r.ID}, ids...)
	}
	return strings.Join(ids, " ")
}

// TestAuditRetention (and on PostgreSQL): the records whose retention ran out (their grant's,
// else the default) are deleted, the chain still verifies across them
// through sealed checkpoints, a later run extends the checkpoint, and a
// deletion outside retention — a record removed, or a checkpoint forged
// to cover it — is still reported. A broken record is never deleted.
// Usage counters stay as they were.
func TestAuditRetention(t *testing.T) { testAuditRetention(t, func(*Config) {}) }

func TestAuditRetentionPostgres(t *testing.T) {
	u := pgDatabase(t)
	testAuditRetention(t, func(c *Config) { c.Database = u })
}

func testAuditRetention(t *testing.T, mod func(*Config)) {
	const day = 24 * time.Hour
	tc := startCoord(t, t.TempDir(), newClock(), mod, func(c *Config) { c.AuditRetention = 30 * day })
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, retentionPolicy)
	_, a := tc.enrollNodeAds(t, tok, "gpu-1", nil)
	_, b := tc.enrollNodeAds(t, tok, "gpu-2", nil)
	nodeA, nodeB := string(a.DeviceID), string(b.DeviceID)
	shipChain(t, tc, string(a.Credential), "a", []chainRec{
		{age: 40 * day}, {age: 40 * day}, // 1, 2: past the default
		{age: 10 * day, grant: "grants[0]"}, // 3: past its grant's 7 days
		{age: 10 * day},                     // 4: within the default
		{age: 8 * day, grant: "grants[0]"},  // 5: past its grant's
		{age: day, grant: "grants[0]"},      // 6: within
		{age: time.Hour},                    // 7
	})
	shipChain(t, tc, string(b.Credential), "b", []chainRec{{age: 40 * day}, {age: 40 * day, edited: true}, {age: time.Hour}})
	today := tc.clock.Now().Unix() / 86400
	_, _, err := tc.store.Lease(t.Context(), "u_alice", "grants[0]", today, 1000, 500, 0, 0)
	if err != nil {
		t.Fatal(err)
	}

	run, err := tc.applyRetention(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if run.Deleted != 5 || run.Kept != 1 || run.Nodes != 2 {
		t.Fatalf("retention run %+v, want 5 deleted (a1 a2 a3 a5 b1), 1 broken kept, 2 nodes", run)
	}
	if got := heldIDs(t, tc, nodeA); got != "a4 a6 a7" {
		t.Fatalf("node A holds %s, want a4 a6 a7", got)
	}
	if got := heldIDs(t, tc, nodeB); got != "b2 b3" {
		t.Fatalf("node B holds %s, want b2 b3 (b2 is broken: kept)", got)
	}
	st := chainOfNode(t, tc, nodeA)
	if len(st.Problems) != 0 || st.Records != 3 || st.Removed != 4 || st.First != 1 || st.Last != 7 {
		t.Fatalf("node A's chain after retention: %+v", st)
	}
	if st := chainOfNode(t, tc, nodeB); len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "break at record 2 (b2)") {
		t.Fatalf("node B's chain: %+v, want only the break at b2", st)
	}
	if used, err := tc.store.DayUsage(t.Context(), "u_alice", "grants[0]", today); err != nil || used != 500 {
		t.Fatalf("usage after retention: %d %v, want 500", used, err)
	}
	trail, _ := tc.store.AdminActions(t.Context(), 10)
	if !hasAction(trail, actionRetention, "5 records of 2 nodes deleted") {
		t.Fatalf("no retention action in the trail: %+v", trail)
	}

	// Again: nothing more to do. Later, a4 expires and joins its
	// neighbours: one checkpoint for 1–5.
	if run, err := tc.applyRetention(t.Context()); err != nil || run.Deleted != 0 {
		t.Fatalf("second run: %+v %v", run, err)
	}
	tc.clock.Advance(25 * day)
	if run, err := tc.applyRetention(t.Context()); err != nil || run.Deleted != 2 {
		t.Fatalf("run 25 days later: %+v %v, want a4 and a6 deleted", run, err)
	}
	cuts, _ := tc.store.AuditCuts(t.Context(), nodeA)
	if len(cuts) != 1 || cuts[0].First != 1 || cuts[0].Last != 6 {
		t.Fatalf("node A's checkpoints: %+v, want one for 1–6", cuts)
	}
	if st := chainOfNode(t, tc, nodeA); len(st.Problems) != 0 || st.Records != 1 || st.Removed != 6 {
		t.Fatalf("node A's chain 25 days later: %+v", st)
	}

	// Someone with the database but not the seal key deletes a7 and
	// writes a checkpoint to cover it.
	a7, _ := tc.store.AuditRecord(t.Context(), "a7")
	l7, _ := auditchain.OpenLink(a7.Body)
	forged := &store.AuditCut{ID: "forged", NodeID: nodeA, First: 7, Last: 7, Prev: l7.Prev, Head: l7.Hash,
		Time: tc.clock.Now(), Seal: []byte("not a seal")}
	if err := tc.store.CutAudit(t.Context(), nodeA, []string{"a7"}, nil, []*store.AuditCut{forged}); err != nil {
		t.Fatal(err)
	}
	st = chainOfNode(t, tc, nodeA)
	if len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "break at record 7 (checkpoint): the checkpoint does not carry the coordinator's seal") {
		t.Fatalf("a forged checkpoint: %+v", st)
	}
	// Retention does not adopt it either.
	tc.clock.Advance(60 * day)
	if _, err := tc.applyRetention(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := chainOfNode(t, tc, nodeA); len(st.Problems) != 1 {
		t.Fatalf("the forged checkpoint after another run: %+v", st)
	}
	// A record deleted without a checkpoint is a gap, even once
	// retention has cut the records around it (b3 expired by now).
	if err := tc.store.CutAudit(t.Context(), nodeB, []string{"b2"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	st = chainOfNode(t, tc, nodeB)
	if len(st.Problems) != 1 || !strings.Contains(st.Problems[0], "gap before record 3 (checkpoint): record 2 is not held") {
		t.Fatalf("a record deleted outside retention: %+v", st)
	}
}

func hasAction(as []*store.AdminAction, action, detail string) bool {
	for _, a := range as {
		if a.Action == action && strings.Contains(a.Detail, detail) {
			return true
		}
	}
	return false
}

// TestAuditCheckpointsResealed: rotating the seal key re-seals the
// checkpoints, so the chain still verifies under the new key.
func TestAuditCheckpointsResealed(t *testing.T) {
	dir := t.TempDir()
	tc := startCoord(t, dir, newClock(), func(c *Config) { c.AuditRetention = time.Hour })
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	_, a := tc.enrollNodeAds(t, tok, "gpu-1", nil)
	shipChain(t, tc, string(a.Credential), "a", []chainRec{{age: 2 * time.Hour}, {age: 2 * time.Hour}, {}})
	if run, err := tc.applyRetention(t.Context()); err != nil || run.Deleted != 2 {
		t.Fatalf("retention: %+v %v", run, err)
	}
	tc.stop()
	newKey := newSealKey()
	if _, err := RotateSealKey(t.Context(), Config{DataDir: dir}, newKey); err != nil {
		t.Fatal(err)
	}
	tc2, err := restartWith(t, tc, dir, func(c *Config) { c.SealKey = newKey })
	if err != nil {
		t.Fatal(err)
	}
	if st := chainOfNode(t, tc2, string(a.DeviceID)); len(st.Problems) != 0 || st.Removed != 2 || st.Records != 1 {
		t.Fatalf("chain after rotating the seal key: %+v", st)
	}
}

// downSink refuses every delivery, like a SIEM that is down.
type downSink struct{}

func (downSink) Deliver(context.Context, []auditsink.Event) error { return errors.New("receiver down") }

// TestAuditRetentionWaitsForSinks: an expired record a sink carrying
// records has not delivered stays; the admin-only sink does not hold
// anything back.
func TestAuditRetentionWaitsForSinks(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) {
		c.AuditRetention = time.Hour
		c.AuditSinks = []AuditSink{
			{Name: "siem", Sink: downSink{}, Filter: auditsink.Filter{Records: true}},
			{Name: "trail", Sink: downSink{}, Filter: auditsink.Filter{Admin: true}},
		}
	})
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	_, a := tc.enrollNodeAds(t, tok, "gpu-1", nil)
	shipChain(t, tc, string(a.Credential), "a", []chainRec{{age: 2 * time.Hour}, {age: 2 * time.Hour}, {}})
	run, err := tc.applyRetention(t.Context())
	if err != nil || run.Deleted != 0 || run.Waiting != 2 {
		t.Fatalf("retention with the sink down: %+v %v, want 2 waiting", run, err)
	}
	recs, _ := tc.store.AuditAfter(t.Context(), 0, 10)
	if err := tc.store.AdvanceSinkCursor(t.Context(), "siem", auditsink.StreamRecords, 0, recs[0].Seq); err != nil {
		t.Fatal(err)
	}
	run, err = tc.applyRetention(t.Context())
	if err != nil || run.Deleted != 1 || run.Waiting != 1 {
		t.Fatalf("retention once the sink delivered a1: %+v %v, want 1 deleted, 1 waiting", run, err)
	}
}
