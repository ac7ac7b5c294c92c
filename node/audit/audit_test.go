package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func appendN(t *testing.T, s *Spool, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		rec := &Record{Time: time.Unix(int64(i), 0).UTC(), Login: "alice@example.com", Model: "llama",
			Decision: DecisionAllow, Grant: "grants[0]", TokensIn: int64(i), Status: 200}
		if err := s.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSpoolChainAndVerify(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 0, 3)
	s.Close()
	// Reopening continues the chain.
	s, err = Open(dir, Options{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 3, 2)
	if s.Seq() != 5 {
		t.Fatalf("seq %d, want 5", s.Seq())
	}
	s.Close()
	if err := Verify(dir); err != nil {
		t.Fatalf("intact spool: %v", err)
	}
	path := filepath.Join(dir, SpoolFile)
	orig, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(orig), "\n")
	for name, edit := range map[string]func() string{
		"edited field":   func() string { return strings.Replace(string(orig), `"tokensIn":2`, `"tokensIn":9`, 1) },
		"removed record": func() string { return strings.Join(append(append([]string{}, lines[:1]...), lines[2:]...), "") },
		"reordered": func() string {
			return lines[1] + lines[0] + strings.Join(lines[2:], "")
		},
		"hash rewritten": func() string {
			return strings.Replace(string(orig), lines[1][9:20], "00000000000", 1)
		},
	} {
		os.WriteFile(path, []byte(edit()), 0o600)
		if err := Verify(dir); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: Verify = %v, want ErrTampered", name, err)
		}
	}
}

func TestSpoolCutsTornTail(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, Options{})
	appendN(t, s, 0, 2)
	s.Close()
	f, _ := os.OpenFile(filepath.Join(dir, SpoolFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"hash":"abc`) // a crash mid-write
	f.Close()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, s, 2, 1)
	s.Close()
	if err := Verify(dir); err != nil {
		t.Fatal(err)
	}
}

func TestHashPrompt(t *testing.T) {
	a, b := HashPrompt([]byte("k1"), []byte("hi")), HashPrompt([]byte("k2"), []byte("hi"))
	if a == b || !strings.HasPrefix(a, "hmac-sha256:") || a != HashPrompt([]byte("k1"), []byte("hi")) {
		t.Fatalf("hashes %s %s", a, b)
	}
}

// receiver is a stand-in coordinator ingest endpoint that dedups by ID.
type receiver struct {
	mu      sync.Mutex
	ids     map[string]int // deliveries per id
	fail    int            // answer 500 to this many more batches (after storing them: a lost reply)
	batches int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer tok" {
		http.Error(w, "no", http.StatusUnauthorized)
		return
	}
	var recs []Record
	if err := json.NewDecoder(r.Body).Decode(&recs); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.batches++
	for _, rec := range recs {
		rc.ids[rec.ID]++
	}
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, "lost", http.StatusInternalServerError)
	}
}

func (rc *receiver) count() (unique, deliveries int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, n := range rc.ids {
		deliveries += n
	}
	return len(rc.ids), deliveries
}

func TestShipperExactlyOnceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	rc := &receiver{ids: map[string]int{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s, _ := Open(dir, Options{})
	defer s.Close()
	cfg := ShipperConfig{Dir: dir, URL: srv.URL, Token: "tok", Client: srv.Client(), BatchRecords: 4, Interval: time.Hour}
	appendN(t, s, 0, 10)
	sh, err := NewShipper(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// ShipNow returns once the spool is shipped to its end, by it or by
	// the shipper's own loop (which starts with a round).
	if _, err := sh.ShipNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if u, d := rc.count(); u != 10 || d != 10 {
		t.Fatalf("receiver got %d unique in %d deliveries, want 10", u, d)
	}
	sh.Close()
	appendN(t, s, 10, 5)
	sh, _ = NewShipper(cfg) // a restarted node
	defer sh.Close()
	if _, err := sh.ShipNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	if u, d := rc.count(); u != 15 || d != 15 {
		t.Fatalf("receiver got %d unique in %d deliveries, want 15 exactly once", u, d)
	}
}

func TestShipperResendsAfterLostReply(t *testing.T) {
	dir := t.TempDir()
	rc := &receiver{ids: map[string]int{}, fail: 1}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	s, _ := Open(dir, Options{})
	defer s.Close()
	appendN(t, s, 0, 3)
	sh, _ := NewShipper(ShipperConfig{Dir: dir, URL: srv.URL, Token: "tok", Client: srv.Client(), Interval: time.Millisecond})
	defer sh.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if off, _ := storedOffset(dir); off > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("shipper never caught up after a failed delivery")
		}
		sh.Kick()
		runtimeYield()
	}
	if u, d := rc.count(); u != 3 || d != 6 {
		t.Fatalf("receiver: %d unique, %d deliveries; want 3 unique, delivered twice (at least once)", u, d)
	}
}

func TestShipperBatchIsJSONArrayOfLines(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, Options{})
	appendN(t, s, 0, 2)
	s.Close()
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got, _ = io.ReadAll(r.Body) }))
	defer srv.Close()
	sh, _ := NewShipper(ShipperConfig{Dir: dir, URL: srv.URL, Client: srv.Client(), Interval: time.Hour})
	defer sh.Close()
	sh.ShipNow(context.Background())
	spool, _ := os.ReadFile(filepath.Join(dir, SpoolFile))
	want := "[" + strings.ReplaceAll(strings.TrimSuffix(string(spool), "\n"), "\n", ",") + "]"
	if !bytes.Equal(got, []byte(want)) {
		t.Fatalf("batch %s\nwant %s", got, want)
	}
	var recs []map[string]any
	if err := json.Unmarshal(got, &recs); err != nil || fmt.Sprint(recs[1]["seq"]) != "2" {
		t.Fatalf("%v %v", recs, err)
	}
}

func runtimeYield() { time.Sleep(time.Millisecond) } // polling step while waiting with a deadline
