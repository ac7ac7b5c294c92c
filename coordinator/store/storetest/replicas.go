package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

func testIdPState(t *testing.T, s Store) {
	c, now := ctx(t), at(0)
	req := &store.IdPAuthRequest{Hash: hash("r1"), Data: []byte(`{"a":1}`), Expires: at(time.Minute)}
	must(t, s.CreateIdPAuthRequest(c, req, now, 2))
	must(t, s.CreateIdPAuthRequest(c, &store.IdPAuthRequest{Hash: hash("r2"), Data: []byte("x"), Expires: at(time.Second)}, now, 2))
	wantErr(t, s.CreateIdPAuthRequest(c, &store.IdPAuthRequest{Hash: hash("r3"), Data: []byte("x"), Expires: at(time.Minute)}, now, 2),
		store.ErrExhausted, "a sign-in over the cap")
	// r2 expired: it no longer counts.
	must(t, s.CreateIdPAuthRequest(c, &store.IdPAuthRequest{Hash: hash("r3"), Data: []byte("x"), Expires: at(time.Minute)}, at(time.Second), 2))
	_, err := s.IdPAuthRequest(c, hash("r2"), at(time.Second))
	wantErr(t, err, store.ErrNotFound, "an expired sign-in")
	got, err := s.IdPAuthRequest(c, hash("r1"), now)
	must(t, err)
	same(t, got, req, "a sign-in read back")

	code := &store.IdPCode{Hash: hash("c1"), Expires: at(time.Minute)}
	upd, err := s.UpdateIdPAuthRequest(c, hash("r1"), now, code, func(a *store.IdPAuthRequest) error {
		a.Data = []byte(`{"a":2}`)
		return nil
	})
	must(t, err)
	same(t, string(upd.Data), `{"a":2}`, "the updated sign-in")
	refused := fmt.Errorf("no")
	if _, err := s.UpdateIdPAuthRequest(c, hash("r1"), now, &store.IdPCode{Hash: hash("c2"), Expires: at(time.Minute)},
		func(a *store.IdPAuthRequest) error { a.Data = []byte("lost"); return refused }); err != refused {
		t.Fatalf("refused update: %v", err)
	}
	got, err = s.IdPAuthRequest(c, hash("r1"), now)
	must(t, err)
	same(t, string(got.Data), `{"a":2}`, "a sign-in after a refused update")
	_, err = s.TakeIdPCode(c, hash("c2"), now)
	wantErr(t, err, store.ErrNotFound, "the code of a refused update")
	_, err = s.UpdateIdPAuthRequest(c, hash("nope"), now, nil, func(*store.IdPAuthRequest) error { return nil })
	wantErr(t, err, store.ErrNotFound, "updating an unknown sign-in")

	_, err = s.TakeIdPCode(c, hash("c1"), at(time.Minute))
	wantErr(t, err, store.ErrNotFound, "an expired code")
	_, err = s.TakeIdPCode(c, hash("c1"), now)
	wantErr(t, err, store.ErrNotFound, "a code taken after an expired attempt")

	tok := &store.IdPToken{Hash: hash("t1"), Subject: "u1", ClientID: "cl", Scopes: []string{"openid", "email"}, Expires: at(time.Minute)}
	must(t, s.CreateIdPToken(c, tok, now, 1))
	wantErr(t, s.CreateIdPToken(c, &store.IdPToken{Hash: hash("t2"), Subject: "u", Expires: at(time.Minute)}, now, 1),
		store.ErrExhausted, "a token over the cap")
	gt, err := s.IdPToken(c, hash("t1"), now)
	must(t, err)
	same(t, gt, tok, "a token read back")
	must(t, s.DeleteIdPToken(c, hash("t1")))
	_, err = s.IdPToken(c, hash("t1"), now)
	wantErr(t, err, store.ErrNotFound, "a revoked token")

	must(t, s.DeleteIdPAuthRequest(c, hash("r1")))
	_, err = s.IdPAuthRequest(c, hash("r1"), now)
	wantErr(t, err, store.ErrNotFound, "a deleted sign-in")
	must(t, s.DeleteExpiredIdPState(c, at(time.Hour)))
	_, err = s.IdPAuthRequest(c, hash("r3"), now)
	wantErr(t, err, store.ErrNotFound, "a swept sign-in")
}

// testIdPStateRace: parallel updates of one sign-in (as from several
// replicas) are applied one after another, and of parallel takes of one
// code exactly one wins.
func testIdPStateRace(t *testing.T, s Store) {
	c, now := ctx(t), at(0)
	must(t, s.CreateIdPAuthRequest(c, &store.IdPAuthRequest{Hash: hash("r"), Data: []byte{}, Expires: at(time.Minute)}, now, 10))
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := s.UpdateIdPAuthRequest(c, hash("r"), now, nil, func(a *store.IdPAuthRequest) error {
				a.Data = append(a.Data, 'x')
				return nil
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	got, err := s.IdPAuthRequest(c, hash("r"), now)
	must(t, err)
	if len(got.Data) != n {
		t.Fatalf("%d of %d parallel updates survived", len(got.Data), n)
	}

	_, err = s.UpdateIdPAuthRequest(c, hash("r"), now, &store.IdPCode{Hash: hash("c"), Expires: at(time.Minute)},
		func(*store.IdPAuthRequest) error { return nil })
	must(t, err)
	wins := make(chan []byte, n)
	for range n {
		wg.Go(func() {
			if req, err := s.TakeIdPCode(c, hash("c"), now); err == nil {
				wins <- req
			}
		})
	}
	wg.Wait()
	close(wins)
	if len(wins) != 1 {
		t.Fatalf("a code was taken %d times", len(wins))
	}
	same(t, <-wins, hash("r"), "the sign-in a code names")
}

func testPresence(t *testing.T, s Store) {
	c := ctx(t)
	online := func(since time.Time, want ...string) {
		t.Helper()
		got, err := s.OnlineDevices(c, since)
		must(t, err)
		w := map[string]bool{}
		for _, id := range want {
			w[id] = true
		}
		same(t, got, w, "online devices")
	}
	must(t, s.OpenNetmapStream(c, "s1", "d1", "rA", at(0)))
	must(t, s.OpenNetmapStream(c, "s2", "d1", "rB", at(0))) // a reconnect on another replica
	must(t, s.OpenNetmapStream(c, "s3", "d2", "rB", at(0)))
	online(at(-time.Second), "d1", "d2")
	must(t, s.CloseNetmapStream(c, "s2"))
	online(at(-time.Second), "d1", "d2")
	// Replica B keeps its streams fresh; replica A died without a word.
	must(t, s.TouchNetmapStreams(c, "rB", at(time.Minute), at(30*time.Second)))
	online(at(30*time.Second), "d2")
	must(t, s.OpenNetmapStream(c, "s4", "d3", "rA", at(time.Minute)))
	must(t, s.CloseReplicaStreams(c, "rA"))
	online(at(-time.Hour), "d2")
	// A replica's beat keeps its streams online, their rows unwritten
	// while younger than half the forget interval; streams of replicas
	// that stopped beating are offline, then deleted.
	must(t, s.OpenNetmapStream(c, "s5", "d5", "rC", at(time.Hour)))
	must(t, s.TouchNetmapStreams(c, "rC", at(time.Hour+time.Minute), at(time.Hour-5*time.Minute)))
	online(at(time.Hour+30*time.Second), "d5")
	online(at(time.Hour + 2*time.Minute))
	online(at(-time.Hour), "d5") // rB stopped beating long ago: rC's beat deleted its stream
	must(t, s.TouchNetmapStreams(c, "rD", at(2*time.Hour), at(2*time.Hour-5*time.Minute)))
	online(at(-time.Hour))
}

func testRelays(t *testing.T, s Store) {
	c := ctx(t)
	relays := func(since time.Time, want map[string]store.RelayReplica) {
		t.Helper()
		got, err := s.Relays(c, since)
		must(t, err)
		same(t, got, want, "relays")
	}
	a := store.RelayReplica{URL: "https://10.0.0.1:8443/derp", Key: "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="}
	b := store.RelayReplica{URL: "https://10.0.0.2:8443/derp", Key: "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="}
	must(t, s.AnnounceRelay(c, "rA", a, at(0), at(-time.Hour)))
	must(t, s.AnnounceRelay(c, "rB", b, at(0), at(-time.Hour)))
	relays(at(-time.Second), map[string]store.RelayReplica{"rA": a, "rB": b})
	// rB keeps announcing (from a new address, restarted with a new
	// key); rA died without a word.
	b2 := store.RelayReplica{URL: "https://10.0.0.3:8443/derp", Key: "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM="}
	must(t, s.AnnounceRelay(c, "rB", b2, at(time.Minute), at(30*time.Second)))
	relays(at(30*time.Second), map[string]store.RelayReplica{"rB": b2})
	relays(at(-time.Hour), map[string]store.RelayReplica{"rB": b2}) // rA's row was deleted
	must(t, s.ForgetRelay(c, "rB"))
	relays(at(-time.Hour), map[string]store.RelayReplica{})
}

// testIdPSetupOnce: of parallel completions of one setup link, exactly
// one wins; an expired or wrong token completes nothing.
func testIdPSetupOnce(t *testing.T, s Store) {
	c := ctx(t)
	u := &store.IdPUser{Email: "setup@example.com", SetupHash: hash("tok"), SetupExpiry: at(time.Hour), Created: at(0)}
	must(t, s.CreateIdPUser(c, u))
	wantErr(t, s.CompleteIdPSetup(c, u.ID, hash("tok"), at(time.Hour), "pw", []byte("sealed"), 7), store.ErrNotFound, "an expired token")
	wantErr(t, s.CompleteIdPSetup(c, u.ID, hash("other"), at(0), "pw", []byte("sealed"), 7), store.ErrNotFound, "a wrong token")
	const n = 8
	var wg sync.WaitGroup
	wins := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			pw := fmt.Sprint("pw", i)
			if err := s.CompleteIdPSetup(c, u.ID, hash("tok"), at(0), pw, []byte("sealed"), 7); err == nil {
				wins <- pw
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	close(wins)
	if len(wins) != 1 {
		t.Fatalf("one setup link completed %d times", len(wins))
	}
	got, err := s.IdPUser(c, u.ID)
	must(t, err)
	if got.PasswordHash != <-wins || got.SetupHash != nil || got.TOTPLastStep != 7 || string(got.TOTPSecret) != "sealed" {
		t.Fatalf("user after setup: %+v", got)
	}
}

// testPaths: a member's path report replaces its last and goes with its
// device.
func testPaths(t *testing.T, s Store) {
	c := ctx(t)
	n1, n2 := newNode(t, s, "gpu-1"), newNode(t, s, "gpu-2")
	paths := func(want map[string]store.PathReport) {
		t.Helper()
		got, err := s.Paths(c)
		must(t, err)
		same(t, got, want, "paths")
	}
	must(t, s.SetPaths(c, n1.ID, []byte(`{"paths":[]}`), at(0)))
	must(t, s.SetPaths(c, n2.ID, []byte(`{"paths":[1]}`), at(0)))
	must(t, s.SetPaths(c, n2.ID, []byte(`{"paths":[2]}`), at(time.Minute)))
	paths(map[string]store.PathReport{n1.ID: {Report: []byte(`{"paths":[]}`), Reported: at(0)},
		n2.ID: {Report: []byte(`{"paths":[2]}`), Reported: at(time.Minute)}})
	must(t, s.DeleteDevice(c, n1.ID))
	paths(map[string]store.PathReport{n2.ID: {Report: []byte(`{"paths":[2]}`), Reported: at(time.Minute)}})
}
