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
	Cost      int64     `json:"cost"`
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
	var costs []modelCost
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
		if a.Cost > 0 && a.Decision == "allow" {
			costs = append(costs, modelCost{a.Model, a.Cost})
		}
	}
	n, err := s.store.InsertAudit(c.Request.Context(), recs)
	if err != nil {
		s.internal(c, "store audit records", err)
		return
	}
	s.observeAuditLag(recs)
	s.countSpend(c.Request.Context(), costs)
	c.JSON(http.StatusOK, auditReceipt{Received: len(recs), Stored: n})
}

// listAudit queries audit records: GET /api/v1/admin/audit?user=&login=
// &model=&node=&decision=&since=RFC3339&until=RFC3339&limit=&before=ID,
// newest event first; or, with after=SEQ, in ingestion order (pullAudit).
func (s *Server) listAudit(c *gin.Context) {
	if _, ok := c.GetQuery("after"); ok {
		s.pullAudit(c)
		return
	}
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

// auditPage answers GET /api/v1/admin/audit?after=SEQ: records in the
// order the coordinator stored them, each with its ingestion sequence
// number. Next is the cursor for the following pull (the last seq
// returned, or after itself when there was nothing new).
type auditPage struct {
	Records []auditEntry `json:"records"`
	Next    int64        `json:"next"`
}

// auditEntry is one record of an auditPage.
type auditEntry struct {
	Seq    int64           `json:"seq"`
	Record json.RawMessage `json:"record"`
}

// pullAudit serves GET /api/v1/admin/audit?after=SEQ&limit=N (default
// 100, at most 10,000): the records stored after SEQ, in ingestion order,
// so a poller that keeps Next never misses a record a node shipped late.
// Filters do not combine with after: a poller takes everything.
func (s *Server) pullAudit(c *gin.Context) {
	after, err := strconv.ParseInt(c.Query("after"), 10, 64)
	if err != nil || after < 0 {
		apiError(c, http.StatusBadRequest, "bad_request", "after: want a sequence number (0 for the start)")
		return
	}
	for _, name := range []string{"user", "login", "model", "node", "decision", "since", "until", "before"} {
		if c.Query(name) != "" {
			apiError(c, http.StatusBadRequest, "bad_request", name+": filters do not combine with after")
			return
		}
	}
	limit, _ := strconv.Atoi(c.DefaultQuery("limit", "100"))
	recs, err := s.store.AuditAfter(c.Request.Context(), after, limit)
	if err != nil {
		s.internal(c, "pull audit records", err)
		return
	}
	out := auditPage{Records: make([]auditEntry, 0, len(recs)), Next: after}
	for _, r := range recs {
		out.Records = append(out.Records, auditEntry{Seq: r.Seq, Record: r.Body})
		out.Next = r.Seq
	}
	c.JSON(http.StatusOK, out)
}
