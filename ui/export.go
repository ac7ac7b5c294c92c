package ui

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Exports of the audit records a filter selects, streamed a batch at a
// time, newest first, at most maxExport records.
const (
	maxExport   = 100000
	exportBatch = 1000
)

// exportCSV streams the filtered records as CSV: GET /ui/audit/export.csv.
func (h *handler) exportCSV(w http.ResponseWriter, r *http.Request, v *Viewer) {
	cw := csv.NewWriter(w)
	h.export(w, r, v, "csv", "text/csv; charset=utf-8", func() {
		cw.Write(csvHeader)
	}, func(rec *AuditRecord) error {
		cw.Write(csvRow(rec))
		cw.Flush()
		return cw.Error()
	})
}

// exportJSONL streams the filtered records as JSON lines, each the record
// as the node sent it (chain fields included, so each line can be checked
// against its hash; the spool's lines are compact JSON already): GET /ui/audit/export.jsonl.
func (h *handler) exportJSONL(w http.ResponseWriter, r *http.Request, v *Viewer) {
	var buf bytes.Buffer
	h.export(w, r, v, "jsonl", "application/x-ndjson", func() {}, func(rec *AuditRecord) error {
		buf.Reset()
		if json.Compact(&buf, rec.Body) != nil { // not JSON: keep it on one line
			buf.Reset()
			buf.WriteString(strings.NewReplacer("\r", " ", "\n", " ").Replace(string(rec.Body)))
		}
		buf.WriteByte('\n')
		_, err := w.Write(buf.Bytes())
		return err
	})
}

// export checks the filter, sends the headers of an attachment and then
// every record the filter selects to row, a batch at a time.
func (h *handler) export(w http.ResponseWriter, r *http.Request, v *Viewer, ext, ctype string, head func(), row func(*AuditRecord) error) {
	if !h.startHeavy(w, v) {
		return
	}
	defer h.endHeavy()
	_, f, msg := parseFilter(r.URL.Query())
	if msg != "" {
		h.fail(w, v, http.StatusBadRequest, msg)
		return
	}
	f.Limit = exportBatch
	recs, err := h.b.Audit(r.Context(), f) // the first batch before any header, so errors show as a page
	if err != nil {
		h.failErr(w, v, "query audit records", err)
		return
	}
	name := "moat-audit-" + time.Now().UTC().Format("20060102T1504Z") + "." + ext
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	head()
	for n := 0; len(recs) > 0; {
		for i := range recs {
			if n == maxExport {
				return
			}
			if row(&recs[i]) != nil {
				return // the client went away
			}
			n++
		}
		if len(recs) < exportBatch {
			return
		}
		f.Before = recs[len(recs)-1].ID
		if recs, err = h.b.Audit(r.Context(), f); err != nil {
			return // the headers are out; the backend logged it, and the file ends early
		}
	}
}

var csvHeader = []string{"id", "time", "node", "node_id", "login", "user_id", "device_id", "model", "api",
	"decision", "reason", "grant", "tokens_in", "tokens_out", "latency_ms", "status", "prompt_hash"}

func csvRow(r *AuditRecord) []string {
	var extra struct {
		PromptHash string `json:"promptHash"`
	}
	_ = json.Unmarshal(r.Body, &extra)
	i := strconv.FormatInt
	row := []string{r.ID, r.Time.UTC().Format(time.RFC3339Nano), r.Node, r.NodeID, r.Login, r.UserID, r.DeviceID,
		r.Model, r.API, r.Decision, r.Reason, r.Grant, i(r.TokensIn, 10), i(r.TokensOut, 10), i(r.LatencyMS, 10),
		strconv.Itoa(r.Status), extra.PromptHash}
	for k, c := range row {
		row[k] = csvCell(c)
	}
	return row
}

// csvCell neutralises a cell a spreadsheet would take for a formula
// (starting with = + - @, or a tab or carriage return) by putting a
// quote in front.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// chainFields are the hash chain's fields of a record.
var chainFields = map[string]bool{"seq": true, "prev": true, "hash": true}

// recordFields splits a record's JSON into its fields in the order the
// node wrote them: the chain's fields apart, and the prompt hash if any.
func recordFields(body []byte) (fields, chain []field, promptHash string) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, nil, ""
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			break
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			break
		}
		f := field{Name: name, Value: string(raw)}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			f.Value = s
		}
		switch {
		case chainFields[name]:
			chain = append(chain, f)
		case name == "promptHash":
			promptHash = f.Value
			fields = append(fields, f)
		default:
			fields = append(fields, f)
		}
	}
	return fields, chain, promptHash
}
