package coordinator_test

import (
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
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
// replica that has just started within meshedWithin, and back; again
// after that one restarts (with a new relay key); and again with a
// replica that listens only a while after it started, as
// moat-coordinator's do (telling the others at once would leave them 5 s
// before they dial again: 4.7 s measured).
func TestRelayMeshesNewReplicaAtOnce(t *testing.T) {
	dsn := pgtest.FreshSchema(t, pgtest.URL(t, "the relay mesh test"))
	var sealKey [32]byte
	rand.Read(sealKey[:])
	replica := func(cfg *coordinator.Config) {
		cfg.RelayMeshURL = cfg.PublicURL + relay.Path
		cfg.Database, cfg.DataDir = dsn, t.TempDir()
		cfg.SealKey, cfg.SealKeySource = sealKey, "the test's seal key"
	}
	start := func() *coordtest.Coord { return coordtest.Start(t, replica) }
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

	// moat-coordinator listens only once the coordinator is made: the
	// running replica must not dial the new one before (DERP would try
	// again only 5 s later).
	c1.Close()
	fresh.Stop()
	late, serve := startUnlistened(t, replica)
	waitUntil(t, func() bool { // announced, and so told of, before it listens
		rs, err := running.Store().Relays(t.Context(), time.Now().Add(-time.Minute))
		return err == nil && len(rs) == 2
	})
	// Not a wait for a condition: the state tested is a replica the
	// others know of that does not listen yet, held for a moment.
	time.Sleep(300 * time.Millisecond)
	serve()
	listening := time.Now()
	c1, err := relay.NewClient(relay.ClientConfig{URL: late + relay.Path, PrivateKey: k1})
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	firstArrival(t, c0, c1, k1.Public())
	if took := time.Since(listening); took > meshedWithin {
		t.Errorf("a member of the running replica reached one of a replica that listened late %v after it listened, want within %v", took, meshedWithin)
	} else {
		t.Logf("meshed with a replica that listened late %v after it listened", took)
	}
}

// startUnlistened makes a coordinator whose address does not listen
// until serve is called, as moat-coordinator does, and closes it when
// the test ends.
func startUnlistened(t *testing.T, mod func(*coordinator.Config)) (url string, serve func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := coordinator.Config{PublicURL: "http://" + addr}
	mod(&cfg)
	s, err := coordinator.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &httptest.Server{Config: &http.Server{Handler: s}}
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		s.Close()
	})
	return cfg.PublicURL, func() {
		if ts.Listener, err = net.Listen("tcp", addr); err != nil {
			t.Fatal(err)
		}
		ts.Start()
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
