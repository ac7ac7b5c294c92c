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
// store with the time they were seen.
func TestSeenReachesTheStore(t *testing.T) {
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
	deadline := time.Now().Add(20 * time.Second)
	for _, id := range ids {
		for {
			d, err := st.Device(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if d.LastSeen.Equal(at) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("device %s: last seen %v, want %v", id, d.LastSeen, at)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
