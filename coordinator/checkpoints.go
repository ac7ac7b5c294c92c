package coordinator

import (
	"bytes"
	"fmt"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/auditchain"
)

// A checkpoint (store.AuditCut) is sealed under the seal key: its seal is
// its fields sealed with the checkpoint's id as additional data, so that
// someone who can write the database but lacks the seal key can neither
// forge one to explain away a deletion nor move one. Rotating the seal
// key re-seals them (sealedColumns).

// cutADPrefix starts a checkpoint seal's additional data.
const cutADPrefix = "audit-cut:"

// cutID names a checkpoint: its node, first record and head.
func cutID(node string, sp auditchain.Span) string {
	return fmt.Sprintf("%s:%d:%.16s", node, sp.First, sp.Head)
}

// cutFields is what a checkpoint's seal holds.
func cutFields(node string, sp auditchain.Span) []byte {
	return fmt.Appendf(nil, "%s\n%d\n%d\n%s\n%s", node, sp.First, sp.Last, sp.Prev, sp.Head)
}

// cutSpan is the span a checkpoint stands for.
func cutSpan(c *store.AuditCut) auditchain.Span {
	return auditchain.Span{First: c.First, Last: c.Last, Prev: c.Prev, Head: c.Head}
}

// sealCut makes node's checkpoint for sp, sealed.
func (s *Server) sealCut(node string, sp auditchain.Span, now time.Time) *store.AuditCut {
	id := cutID(node, sp)
	return &store.AuditCut{
		ID: id, NodeID: node, First: sp.First, Last: sp.Last, Prev: sp.Prev, Head: sp.Head, Time: now,
		Seal: s.box.Seal(cutFields(node, sp), []byte(cutADPrefix+id)),
	}
}

// cutSealed reports whether c carries this coordinator's seal over its
// own fields.
func (s *Server) cutSealed(c *store.AuditCut) bool {
	got, err := s.box.Open(c.Seal, []byte(cutADPrefix+c.ID))
	return err == nil && bytes.Equal(got, cutFields(c.NodeID, cutSpan(c)))
}
