package auditsink

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/moatmesh/moat/coordinator/store"
)

var secret = []byte("0123456789abcdef-webhook-secret")

// receiver is a webhook endpoint that verifies every signature and keeps
// what it got, in arrival order.
type receiver struct {
	t    *testing.T
	addr string
	hec  bool
	srv  *httptest.Server
	mu   sync.Mutex
	got  []Event
	hits atomic.Int64
}

func startReceiver(t *testing.T, addr string, hec bool) *receiver {
	r := &receiver{t: t, addr: addr, hec: hec}
	r.start()
	t.Cleanup(r.srv.Close)
	return r
}

// start listens (again) on r.addr, or a free port the first time.
func (r *receiver) start() {
	ln, err := net.Listen("tcp", cmp(r.addr, "127.0.0.1:0"))
	for end := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(end); {
		ln, err = net.Listen("tcp", r.addr) // the old socket may linger an instant
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Listener.Close()
	r.srv.Listener = ln
	r.srv.StartTLS()
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	r.hits.Add(1)
	body, _ := io.ReadAll(req.Body)
	if err := Verify(secret, req.Header.Get(SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		r.t.Errorf("receiver: %v", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	evs, err := r.decode(req, body)
	if err != nil {
		r.t.Errorf("receiver: %v", err)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got = append(r.got, evs...)
	r.mu.Unlock()
}

func (r *receiver) decode(req *http.Request, body []byte) ([]Event, error) {
	if !r.hec {
		var b struct{ Events []Event }
		return b.Events, json.Unmarshal(body, &b)
	}
	if req.Header.Get("Authorization") != "Splunk hec-token" {
		return nil, fmt.Errorf("HEC token %q", req.Header.Get("Authorization"))
	}
	var evs []Event
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var h hecEvent
		if err := json.Unmarshal(sc.Bytes(), &h); err != nil || h.SourceType != "moat:"+h.Event.Stream || h.Time == 0 {
			return nil, fmt.Errorf("HEC line %s: %v", sc.Bytes(), err)
		}
		evs = append(evs, h.Event)
	}
	return evs, nil
}

func (r *receiver) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// distinct counts the distinct ids received.
func (r *receiver) distinct() int {
	seen := map[string]bool{}
	for _, e := range r.events() {
		seen[e.ID] = true
	}
	return len(seen)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func openStore(t *testing.T) *store.DB {
	s, err := store.Open(t.Context(), "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// addRecords stores n records from i on; every third is denied and
// every record carries a prompt; the event times go backwards, as from
// a node shipping late.
func addRecords(t *testing.T, s *store.DB, from, n int) {
	var recs []*store.AuditRecord
	for i := from; i < from+n; i++ {
		dec := []string{"allow", "allow", "deny"}[i%3]
		body := fmt.Sprintf(`{"id":"r%03d","decision":%q,"prompt":{"messages":"secret prompt %d"},"promptSealed":"hpke1:sealed-prompt"}`, i, dec, i)
		recs = append(recs, &store.AuditRecord{ID: fmt.Sprintf("r%03d", i), Decision: dec,
			Time: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).Add(-time.Duration(i) * time.Minute), Body: []byte(body)})
	}
	if _, err := s.InsertAudit(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func addActions(t *testing.T, s *store.DB, actions ...string) {
	for _, a := range actions {
		if err := s.LogAdminAction(context.Background(), &store.AdminAction{Actor: "u_x", Action: a, Target: "t"}); err != nil {
			t.Fatal(err)
		}
	}
}

func start(t *testing.T, s *store.DB, sink Sink, f Filter, mod ...func(*Config)) *Runner {
	cfg := Config{Name: "webhook", Sink: sink, Filter: f, Batch: 7, Interval: 10 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, Metrics: NewMetrics(nil)}
	for _, m := range mod {
		m(&cfg)
	}
	r := Start(cfg, s)
	t.Cleanup(r.Close)
	return r
}

func webhook(rcv *receiver) *Webhook {
	return &Webhook{URL: "https://" + rcv.addr + "/hook", Secret: secret, Client: rcv.srv.Client()}
}

// TestWebhookReceiverRestart: the receiver dies mid-stream and comes
// back on its address; everything stored, also while it was down, gets
// there in order, duplicates only of ids already sent, no prompt.
func TestWebhookReceiverRestart(t *testing.T) {
	s := openStore(t)
	addRecords(t, s, 0, 40)
	addActions(t, s, "policy.save", "auth.refused", "token.create")
	rcv := startReceiver(t, "", false)
	r := start(t, s, webhook(rcv), Filter{Records: true, Admin: true})
	waitFor(t, "the first events", func() bool { return rcv.distinct() >= 14 })
	rcv.srv.Close()
	addRecords(t, s, 40, 40)
	addActions(t, s, "device.revoke")
	// Down: deliveries fail, and the backlog counts what waits.
	waitFor(t, "failed deliveries and the backlog", func() bool {
		return value(r.cfg.Metrics.errors.WithLabelValues("webhook")) >= 2 &&
			value(r.cfg.Metrics.backlog.WithLabelValues("webhook", StreamRecords)) >= 40
	})
	rcv.start()
	waitFor(t, "everything", func() bool { return rcv.distinct() == 84 })
	checkOrder(t, rcv.events())
	for _, e := range rcv.events() {
		if strings.Contains(string(e.Data), "secret prompt") || strings.Contains(string(e.Data), "sealed-prompt") {
			t.Fatalf("a prompt left: %s", e.Data)
		}
	}
	waitFor(t, "the backlog to drain", func() bool {
		return value(r.cfg.Metrics.backlog.WithLabelValues("webhook", StreamRecords)) == 0
	})
}

// checkOrder: per stream, each id's first arrival comes in seq order,
// and a redelivered id is one seen before.
func checkOrder(t *testing.T, evs []Event) {
	t.Helper()
	last := map[string]int64{}
	seen := map[string]bool{}
	for _, e := range evs {
		if seen[e.ID] {
			continue
		}
		if e.Seq <= last[e.Stream] {
			t.Fatalf("%s (seq %d) after seq %d of %s", e.ID, e.Seq, last[e.Stream], e.Stream)
		}
		seen[e.ID], last[e.Stream] = true, e.Seq
	}
}

// TestWebhookFilterAndPrompts: a refusals-only sink gets the denied
// records and refused credentials and nothing else; one allowed to carry
// prompts gets them; Splunk HEC lines carry the token and the events.
func TestWebhookFilterAndPrompts(t *testing.T) {
	s := openStore(t)
	addRecords(t, s, 0, 9)
	addActions(t, s, "policy.save", "auth.refused")
	rcv := startReceiver(t, "", true)
	w := webhook(rcv)
	w.Format, w.SplunkToken = FormatSplunkHEC, "hec-token"
	start(t, s, w, Filter{Refusals: true}, func(c *Config) { c.Prompts = true })
	waitFor(t, "the refusals", func() bool { return rcv.distinct() == 4 })
	var ids []string
	for _, e := range rcv.events() {
		ids = append(ids, e.ID)
		if e.Stream == StreamRecords && !strings.Contains(string(e.Data), "secret prompt") {
			t.Errorf("prompt removed though the sink may carry it: %s", e.Data)
		}
	}
	slices.Sort(ids)
	if want := []string{"admin:2", "record:r002", "record:r005", "record:r008"}; !slices.Equal(ids, want) {
		t.Fatalf("refusals sink got %v, want %v", ids, want)
	}
}

type follower struct{}

func (follower) IsLeader() bool { return false }

// TestWebhookNotLeader: a replica that does not lead sends nothing.
func TestWebhookNotLeader(t *testing.T) {
	s := openStore(t)
	addRecords(t, s, 0, 3)
	rcv := startReceiver(t, "", false)
	start(t, s, webhook(rcv), Filter{Records: true}, func(c *Config) { c.Leader = follower{} })
	other := start(t, s, webhook(rcv), Filter{Records: true}, func(c *Config) { c.Name = "other" })
	waitFor(t, "the leading sink", func() bool { return rcv.distinct() == 3 })
	other.Close()
	if n := len(rcv.events()); n != 3 {
		t.Fatalf("%d events, want 3 from the leading sink only", n)
	}
}

func TestWebhookCheckAndVerify(t *testing.T) {
	for _, w := range []Webhook{
		{URL: "http://siem.example/hook", Secret: secret},
		{URL: "https://siem.example/hook", Secret: []byte("short")},
		{URL: "https://siem.example/hook", Secret: secret, Format: "xml"},
		{URL: "siem.example", Secret: secret},
	} {
		if w.Check() == nil {
			t.Errorf("%+v accepted", w)
		}
	}
	now := time.Now()
	h := Sign(secret, now, []byte("body"))
	for name, err := range map[string]error{
		"other body":   Verify(secret, h, []byte("b0dy"), now, time.Minute),
		"other secret": Verify([]byte("another secret!!"), h, []byte("body"), now, time.Minute),
		"replayed":     Verify(secret, h, []byte("body"), now.Add(time.Hour), time.Minute),
		"garbled":      Verify(secret, "v1=00", []byte("body"), now, time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if err := Verify(secret, h, []byte("body"), now, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// value reads a gauge or counter.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		return -1
	}
	if d.Gauge != nil {
		return d.Gauge.GetValue()
	}
	return d.Counter.GetValue()
}
