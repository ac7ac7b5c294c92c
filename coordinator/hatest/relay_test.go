package hatest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/pgtest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/mesh/wire"
)

// The relays of two replicas on one PostgreSQL mesh, given nothing but
// each replica's own address: a member relayed through replica 0 and a
// member relayed through replica 1 reach each other, both ways. A member
// revoked on replica 1 while attached to replica 0 is cut off there.
func TestRelaysOfReplicasMesh(t *testing.T) {
	dsn := pgtest.FreshSchema(t, pgtest.URL(t, "replica tests"))
	var sealKey [32]byte
	rand.Read(sealKey[:])
	var reps []*coordtest.Coord
	for range 2 {
		reps = append(reps, coordtest.Start(t, func(cfg *coordinator.Config) {
			cfg.RelayMeshURL = cfg.PublicURL + relay.Path // the replica's own address
			cfg.Database, cfg.DataDir = dsn, t.TempDir()
			cfg.SealKey, cfg.SealKeySource = sealKey, "the test's seal key"
		}))
	}
	reps[0].SavePolicy(t, `{ "tagOwners": { "tag:gpu": [] } }`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Member i enrolls with, and attaches to the relay of, replica i.
	keys := make([]key.Private, 2)
	ids := make([]wire.DeviceID, 2)
	clients := make([]*relay.Client, 2)
	for i, r := range reps {
		k, err := key.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		ctl, err := control.New(control.Config{URL: r.URL})
		if err != nil {
			t.Fatal(err)
		}
		res, err := ctl.Enroll(ctx, wire.EnrollRequest{Version: wire.Version, AuthKey: wire.Secret(r.EnrollKey(t, "tag:gpu")), Key: k.Public(), Hostname: "gpu"})
		if err != nil {
			t.Fatal(err)
		}
		keys[i], ids[i] = k, res.DeviceID
		if clients[i], err = relay.NewClient(relay.ClientConfig{URL: r.URL + relay.Path, PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { clients[i].Close() })
	}
	waitFor(t, "both members attached", func() bool { return clients[0].Connected() && clients[1].Connected() })
	relayed(t, clients[0], clients[1], keys[1].Public(), "through replica 0, then 1")
	relayed(t, clients[1], clients[0], keys[0].Public(), "through replica 1, then 0")

	reps[1].Admin(t, "POST", "/devices/"+string(ids[0])+"/revoke", "")
	waitFor(t, "the revoked member cut off replica 0's relay", func() bool { return !clients[0].Connected() && clients[0].Err() != nil })
	if !clients[1].Connected() {
		t.Fatal("a revocation cut off another member")
	}
}

// relayed sends msg from one relay client to another (key to) until it
// arrives: the relays' mesh forms within a beat of the replicas starting.
func relayed(t *testing.T, from, dst *relay.Client, to key.Public, msg string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		from.Send(to, []byte(msg)) // not connected yet: the next try
		select {
		case p := <-dst.Recv():
			if string(p.Data) != msg {
				t.Fatalf("got %q, want %q", p.Data, msg)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never arrived", msg)
		}
	}
}
