package node

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/member"
	"github.com/moatmesh/moat/mesh/wire"
)

// A node without the lockdown says so in its status (rather than saying
// nothing, which the UI shows as "not reported").
func TestStatusWithoutLockdown(t *testing.T) {
	now := time.Now()
	n := &Node{}
	st := n.nodeStatus()
	if st.Lockdown == nil || st.Lockdown.Active || st.Lockdown.Error != "" || st.Integrity != nil {
		t.Fatalf("status %+v", st)
	}
	if st := lockdownStatus(nil, now); !st.Checked.Equal(now) {
		t.Errorf("checked %v, want %v", st.Checked, now)
	}
	b, _ := json.Marshal(st)
	if !strings.Contains(string(b), `"lockdown":{"active":false,`) {
		t.Errorf("status JSON %s", b)
	}
	var back wire.NodeStatus
	if err := json.Unmarshal(b, &back); err != nil || back.Lockdown == nil {
		t.Errorf("the coordinator cannot read it back: %v", err)
	}
}

// reportSink is a stand-in coordinator that keeps the status reports a
// node sends (POST /api/v1/node), with a control client for the node.
type reportSink struct {
	ctl *control.Client
	mu  sync.Mutex
	got []string
}

func newReportSink(t *testing.T) *reportSink {
	t.Helper()
	s := &reportSink{}
	coord := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/api/v1/node" {
			s.mu.Lock()
			s.got = append(s.got, string(b))
			s.mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(coord.Close)
	ctl, err := control.New(control.Config{URL: coord.URL, Credential: "moat_nc_test"})
	if err != nil {
		t.Fatal(err)
	}
	s.ctl = ctl
	return s
}

// member is a mesh member (netstack, no peers) that reports through the
// sink's control client; it closes when the test ends.
func (s *reportSink) member(t *testing.T) *member.Member {
	t.Helper()
	priv, _ := key.NewPrivate()
	m, err := member.New(member.Config{PrivateKey: priv, Control: s.ctl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// reports returns a copy of the reports so far, oldest first.
func (s *reportSink) reports() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// The node reports its status again every StatusInterval, so drop
// counters do not go stale, and stops when its context ends.
func TestStatusReportedPeriodically(t *testing.T) {
	sink := newReportSink(t)
	n := &Node{cfg: Config{Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641")}},
		log: slog.New(slog.DiscardHandler), member: sink.member(t)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.reportStatus(ctx, 5*time.Millisecond)
	}()
	count := func() int { return len(sink.reports()) }
	for deadline := time.Now().Add(10 * time.Second); count() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d reports in 10 s", count())
		}
	}
	cancel()
	<-done
	if r := sink.reports()[1]; !strings.Contains(r, `"status":{"lockdown":{"active":false`) {
		t.Errorf("report %s", r)
	}
}
