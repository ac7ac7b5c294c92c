package control

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// TestWatchLearnsRefusalAtOnce: when the coordinator ends a stream that
// was up (as it does for a revoked device), Watch asks again at once and
// returns the refusal, without a backoff and without reporting a
// connection problem.
func TestWatchLearnsRefusalAtOnce(t *testing.T) {
	priv, _ := key.NewPrivate()
	nm := &wire.NetMap{Version: wire.Version, Seq: 1, Self: wire.Self{Key: priv.Public(), Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.9")}}}
	line, _ := json.Marshal(nm)
	var calls atomic.Int32
	var ended atomic.Int64 // unix nanos when the stream was ended
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"this device was revoked; run ` + "`moat login`" + `","code":"device_not_live"}`))
			return
		}
		w.Write(append(line, '\n'))
		w.(http.Flusher).Flush()
		select { // up for a while, then ended by the coordinator
		case <-time.After(600 * time.Millisecond):
		case <-r.Context().Done():
		}
		ended.Store(time.Now().UnixNano())
	}))
	defer ts.Close()
	c, _ := New(Config{URL: ts.URL, Credential: "cred"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var problems atomic.Int32
	err := c.Watch(ctx, func(*wire.NetMap) {}, func(err error) {
		if err != nil {
			problems.Add(1)
		}
	})
	took := time.Since(time.Unix(0, ended.Load()))
	if !IsAuth(err) {
		t.Fatalf("Watch = %v, want the refusal", err)
	}
	if took > 200*time.Millisecond {
		t.Errorf("the refusal came %v after the stream ended; want at once", took)
	}
	if problems.Load() != 0 {
		t.Errorf("Watch reported %d connection problems for a stream the coordinator ended", problems.Load())
	}
}
