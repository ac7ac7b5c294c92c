package member

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// recorder is a sink that keeps the netmaps it was given.
type recorder struct {
	mu   sync.Mutex
	seqs []uint64
	err  error
}

func (r *recorder) SetNetMap(nm *wire.NetMap) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = append(r.seqs, nm.Seq)
	return r.err
}

// early is a sink that notes whether the member already showed a
// netmap in NetMap while handing it to the sinks.
type early struct {
	m    *Member
	seen atomic.Bool
}

func (e *early) SetNetMap(nm *wire.NetMap) error {
	if cur := e.m.NetMap(); cur != nil && cur.Seq == nm.Seq {
		e.seen.Store(true)
	}
	return nil
}

func (r *recorder) got() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]uint64(nil), r.seqs...)
}

// fakeCoordinator streams netmaps (one JSON line each) and then holds the
// stream open until the request ends.
func fakeCoordinator(t *testing.T, nms ...*wire.NetMap) *control.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, nm := range nms {
			b, _ := json.Marshal(nm)
			w.Write(append(b, '\n'))
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(ts.Close)
	c, err := control.New(control.Config{URL: ts.URL, Credential: "cred"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func netmap(k key.Public, seq uint64, addr string) *wire.NetMap {
	return &wire.NetMap{Version: wire.Version, Seq: seq, Self: wire.Self{Key: k, Addresses: []netip.Addr{netip.MustParseAddr(addr)}}}
}

// TestRunAppliesThenHandsToSinks: a good netmap reaches the engine and
// every sink in order (a failing sink does not stop the next); one for
// another key is refused, reported, and reaches no sink; Close ends Run.
func TestRunAppliesThenHandsToSinks(t *testing.T) {
	priv, _ := key.NewPrivate()
	other, _ := key.NewPrivate()
	statusc := make(chan error, 8)
	m, err := New(Config{PrivateKey: priv, OnStatus: func(err error) { statusc <- err }})
	if err != nil {
		t.Fatal(err)
	}
	m.SetControl(fakeCoordinator(t, netmap(priv.Public(), 1, "100.64.0.7"), netmap(other.Public(), 2, "100.64.0.8")))
	failing, second := &recorder{err: errors.New("no")}, &recorder{}
	m.AddSink(failing)
	m.AddSink(second)
	published := &early{m: m}
	m.AddSink(published)
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()

	select {
	case <-m.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("no netmap applied")
	}
	if got := m.Engine().Addresses(); len(got) != 1 || got[0] != netip.MustParseAddr("100.64.0.7") {
		t.Fatalf("engine addresses %v, want the netmap's", got)
	}
	var statuses []error
	for len(statuses) < 2 {
		select {
		case err := <-statusc:
			statuses = append(statuses, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("statuses %v, want connected then refused", statuses)
		}
	}
	if statuses[0] != nil || !errors.Is(statuses[1], ErrNetMapRefused) {
		t.Fatalf("statuses %v, want nil then ErrNetMapRefused", statuses)
	}
	for _, r := range []*recorder{failing, second} {
		if got := r.got(); len(got) != 1 || got[0] != 1 {
			t.Fatalf("sink got netmaps %v, want only seq 1", got)
		}
	}
	if m.NetMap().Seq != 1 {
		t.Fatalf("NetMap().Seq = %d, want the last applied, 1", m.NetMap().Seq)
	}
	// NetMap shows a netmap only once every sink has it: `moat status`
	// must not say connected while the router still answers "not
	// connected".
	if published.seen.Load() {
		t.Error("NetMap showed the netmap before every sink had it")
	}
	m.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Run after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end Run")
	}
	if err := m.Run(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run on a closed member = %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := EnsureDir(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "node.json")
	for _, content := range []string{"first", "second"} {
		if err := WriteFile(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Fatalf("read back %q, %v; want %q", b, err, content)
		}
	}
	fi, _ := os.Stat(path)
	di, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("modes: file %v, dir %v; want 0600 and 0700", fi.Mode(), di.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
