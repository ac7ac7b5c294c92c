package coordinator

import (
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/wire"
)

// TestModelAtRestSummary: a model counts as encrypted at rest on a node
// only when its weights, the spool and the state all are; the first
// plain path's reason is shown; older nodes report nothing.
func TestModelAtRestSummary(t *testing.T) {
	enc := wire.Storage{Encrypted: true, How: "fscrypt v2 (AES-256-XTS)"}
	plain := wire.Storage{Reason: "no fscrypt policy"}
	for _, tc := range []struct {
		name string
		st   wire.NodeStatus
		want string
	}{
		{"older node", wire.NodeStatus{}, ""},
		{"all encrypted", wire.NodeStatus{AtRest: &wire.AtRestStatus{State: enc, Spool: enc, Models: map[string]wire.Storage{"m": enc}}}, "encrypted"},
		{"plain weights", wire.NodeStatus{AtRest: &wire.AtRestStatus{State: enc, Spool: enc, Models: map[string]wire.Storage{"m": plain}}}, "not encrypted: no fscrypt policy"},
		{"plain spool", wire.NodeStatus{AtRest: &wire.AtRestStatus{State: enc, Spool: plain, Models: map[string]wire.Storage{"m": enc}}}, "not encrypted: no fscrypt policy"},
		{"model not reported", wire.NodeStatus{AtRest: &wire.AtRestStatus{State: enc, Spool: enc}}, "not encrypted: the node reports no weights path"},
	} {
		if got := modelAtRest(tc.st, "m"); !strings.HasPrefix(got, tc.want) || (tc.want == "") != (got == "") {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	ui := uiAtRest(&wire.AtRestStatus{State: enc, Spool: plain, Models: map[string]wire.Storage{"b": enc, "a": plain}})
	if ui.Plain() != 2 || len(ui.Weights) != 2 || ui.Weights[0].What != "weights of a" || ui.Spool.What != "audit spool" {
		t.Errorf("uiAtRest: %+v", ui)
	}
}
