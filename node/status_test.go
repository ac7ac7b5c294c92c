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

// The node reports its status again every StatusInterval, so drop
// counters do not go stale, and stops when its context ends.
func TestStatusReportedPeriodically(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	coord := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/api/v1/node" {
			mu.Lock()
			bodies = append(bodies, string(b))
			mu.Unlock()
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer coord.Close()
	ctl, err := control.New(control.Config{URL: coord.URL, Credential: "moat_nc_test"})
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: Config{Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641")}},
		log: slog.New(slog.DiscardHandler), ctl: ctl}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.reportStatus(ctx, 5*time.Millisecond)
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(bodies)
	}
	for deadline := time.Now().Add(10 * time.Second); count() < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d reports in 10 s", count())
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(bodies[1], `"status":{"lockdown":{"active":false`) {
		t.Errorf("report %s", bodies[1])
	}
}
