package node

import (
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/audit"
)

// TestSpoolRetentionRules: before the first netmap every record is kept;
// then a grant's audit.retention applies to its records (MCP grants
// too) and the node's default to the rest.
func TestSpoolRetentionRules(t *testing.T) {
	r := &spoolRetention{def: 30 * 24 * time.Hour}
	rec := func(grant string) *audit.Record { return &audit.Record{Grant: grant} }
	if d := r.keep(rec("grants[0]")); d != 0 {
		t.Fatalf("before any netmap: %v, want kept (0)", d)
	}
	r.SetNetMap(&wire.NetMap{Rules: &wire.NodeRules{
		Grants:    []wire.GrantRule{{ID: "grants[0]", Audit: wire.AuditRules{Retention: wire.Duration(7 * 24 * time.Hour)}}, {ID: "grants[1]"}},
		MCPGrants: []wire.GrantRule{{ID: "grants[2]", Audit: wire.AuditRules{Retention: wire.Duration(time.Hour)}}},
	}})
	for grant, want := range map[string]time.Duration{"grants[0]": 7 * 24 * time.Hour, "grants[1]": 30 * 24 * time.Hour, "grants[2]": time.Hour, "": 30 * 24 * time.Hour} {
		if d := r.keep(rec(grant)); d != want {
			t.Errorf("grant %q: %v, want %v", grant, d, want)
		}
	}
}
