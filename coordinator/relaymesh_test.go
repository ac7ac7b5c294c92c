package coordinator_test

import (
	"crypto/rand"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/pgtest"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
)

// meshedWithin is how soon after a replica starts serving a member
// attached to another replica must reach a member attached to it: the
// running replica hears it is up and meshes at once (0.15–0.36 s
// measured under -race at load 12). Meshing only at the running
// replica's next check of the replica list took 4.6 s here.
const meshedWithin = 1500 * time.Millisecond

// TestRelayMeshesNewReplicaAtOnce: two replicas on one PostgreSQL. A
// member attached to the running replica reaches a member attached to a
// replica that has just started (and again after that one restarts, with
// a new relay key) within meshedWithin, and back.
func TestRelayMeshesNewReplicaAtOnce(t *testing.T) {
	dsn := pgtest.FreshSchema(t, pgtest.URL(t, "the relay mesh test"))
	var sealKey [32]byte
	rand.Read(sealKey[:])
	start := func() *coordtest.Coord {
		return coordtest.Start(t, func(cfg *coordinator.Config) {
			cfg.RelayMeshURL = cfg.PublicURL + relay.Path
			cfg.Database, cfg.DataDir = dsn, t.TempDir()
			cfg.SealKey, cfg.SealKeySource = sealKey, "the test's seal key"
		})
	}
	running := start()
	running.SavePolicy(t, `{ "tagOwners": { "tag:gpu": [] } }`)
	k0, _ := enrollGPU(t, running, "gpu-0")
	k1, _ := enrollGPU(t, running, "gpu-1")
	c0 := dialRelay(t, running, k0)
	waitUntil(t, c0.Connected)

	began := time.Now()
	fresh := start()
	serving := time.Now()
	c1 := dialRelay(t, fresh, k1)
	firstArrival(t, c0, c1, k1.Public())
	if took := time.Since(serving); took > meshedWithin {
		t.Errorf("a member of the running replica reached one of a new replica %v after it started, want within %v", took, meshedWithin)
	} else {
		t.Logf("meshed with the new replica %v after it started (%v after it began to)", took, time.Since(began))
	}
	firstArrival(t, c1, c0, k0.Public())

	c1.Close()
	fresh.Restart(t)
	restarted := time.Now() // serving
	c1 = dialRelay(t, fresh, k1)
	firstArrival(t, c0, c1, k1.Public())
	if took := time.Since(restarted); took > meshedWithin {
		t.Errorf("a member of the running replica reached one of a restarted replica %v after it started, want within %v", took, meshedWithin)
	} else {
		t.Logf("meshed with the restarted replica %v after it started", took)
	}
}

// firstArrival sends from one relay client to another (key to) every
// 10 ms until a packet arrives, for at most 20 s.
func firstArrival(t *testing.T, from, dst *relay.Client, to key.Public) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(20 * time.Second)
	for {
		from.Send(to, []byte("hello")) // dropped while not meshed
		select {
		case p := <-dst.Recv():
			p.Release()
			return
		case <-tick.C:
		case <-timeout:
			t.Fatal("nothing arrived within 20 s")
		}
	}
}
