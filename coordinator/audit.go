package coordinator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
)

// maxAuditBatch bounds the records of one shipment.
const maxAuditBatch = 10000

// auditRecord is the part of a node's audit record the coordinator indexes;
// the whole record is kept as sent.
type auditRecord struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	UserID    string    `json:"userId"`
	Login     string    `json:"login"`
	DeviceID  string    `json:"deviceId"`
	Model     string    `json:"model"`
	API       string    `json:"api"`
	Decision  string    `json:"decision"`
	Reason    string    `json:"reason"`
	Grant     string    `json:"grant"`
	TokensIn  int64     `json:"tokensIn"`
	TokensOut int64     `json:"tokensOut"`
	LatencyMS int64     `json:"latencyMs"`
	Status    int       `json:"status"`
}

// ingestAudit stores a batch of a node's audit records: POST /api/v1/audit
// (node credential; a JSON array of records). Delivery is at least once:
// records already stored (same id) are skipped. The node is the
// authenticated one, whatever a record claims.
func (s *Server) ingestAudit(c *gin.Context) {
	node := device(c)
	if node.Kind != store.KindNode {
		apiError(c, http.StatusForbidden, "not_a_node", "only nodes ship audit records")
		return
	}
	var raw []json.RawMessage
	if !decode(c, limitAudit, &raw) {
		return
	}
	if len(raw) > maxAuditBatch {
		apiError(c, http.StatusRequestEntityTooLarge, "too_large", "send at most 10000 records per request")
		return
	}
	recs := make([]*store.AuditRecord, 0, len(raw))
	for i, r := range raw {
		var a auditRecord
		if err := json.Unmarshal(r, &a); err != nil || a.ID == "" || len(a.ID) > 64 || a.Time.IsZero() {
			apiError(c, http.StatusBadRequest, "bad_request", "record "+strconv.Itoa(i)+": want an object with id (at most 64 characters) and time")
			return
		}
		recs = append(recs, &store.AuditRecord{
			ID: a.ID, NodeID: node.ID, Time: a.Time, UserID: a.UserID, Login: a.Login, DeviceID: a.DeviceID,
			Model: a.Model, API: a.API, Decision: a.Decision, Reason: a.Reason, Grant: a.Grant,
			TokensIn: a.TokensIn, TokensOut: a.TokensOut, LatencyMS: a.LatencyMS, Status: a.Status, Body: r,
		})
	}
	n, err := s.store.InsertAudit(c.Request.Context(), recs)
	if err != nil {
		s.internal(c, "store audit records", err)
		return
	}
	s.observeAuditLag(recs)
	c.JSON(http.StatusOK, auditReceipt{Received: len(recs), Stored: n})
}

// listAudit queries audit records: GET /api/v1/admin/audit?user=&login=
// &model=&node=&decision=&since=RFC3339&until=RFC3339&limit=&before=ID.
func (s *Server) listAudit(c *gin.Context) {
	f := store.AuditFilter{
		UserID: c.Query("user"), Login: c.Query("login"), Model: c.Query("model"),
		NodeID: c.Query("node"), Decision: c.Query("decision"), Before: c.Query("before"),
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				apiError(c, http.StatusBadRequest, "bad_request", name+": want an RFC 3339 time like 2026-11-22T10:00:00Z")
				return
			}
			*dst = t
		}
	}
	f.Limit, _ = strconv.Atoi(c.DefaultQuery("limit", "100"))
	recs, err := s.store.Audit(c.Request.Context(), f)
	if err != nil {
		s.internal(c, "query audit records", err)
		return
	}
	out := auditList{Records: make([]json.RawMessage, 0, len(recs))}
	for _, r := range recs {
		out.Records = append(out.Records, r.Body)
	}
	c.JSON(http.StatusOK, out)
}
