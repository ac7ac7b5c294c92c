package netmap

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
)

// Devices noted as seen, more than one burst of them, all reach the
// store with the time they were seen; presence rows come and go with
// their streams.
func TestStreamWritesReachTheStore(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "moat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var ids []string
	for i := range 2*touchBurst + 1 {
		priv, _ := key.NewPrivate()
		d := &store.Device{ID: fmt.Sprint("n_", i), Kind: store.KindNode, Hostname: "gpu", Tags: []string{"tag:gpu"},
			PublicKey: priv.Public().String(), Created: time.Now()}
		if err := st.CreateDevice(ctx, d); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	pols := &benchPolicies{}
	pols.set(t, benchPolicy(`"llama"`))
	f, err := New(ctx, Config{Store: st, Policies: pols, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, id := range ids {
		f.seen(id)
	}
	online := func(id string) bool {
		on, err := st.OnlineDevices(ctx, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		return on[id]
	}
	gone := f.present(ctx, ids[0])
	if !online(ids[0]) {
		t.Fatal("present returned before the stream's row was written")
	}
	gone()
	waitUntil(t, "its removal", func() bool { return !online(ids[0]) })
	for _, id := range ids {
		waitUntil(t, id+"'s last seen", func() bool {
			d, err := st.Device(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return d.LastSeen.Equal(at)
		})
	}
}

// waitUntil checks cond every 20 ms until it holds, for up to 20 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
