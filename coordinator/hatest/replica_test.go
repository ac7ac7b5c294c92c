package hatest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// revocationBudget is how soon a revocation made on one replica must end
// the device's stream and drop its key from every node, on every replica.
const revocationBudget = 250 * time.Millisecond

// meshPolicy lets everyone use llama, served by tag:gpu nodes, so that
// every node's netmap lists every person's device.
const meshPolicy = `{
  "groups": { "group:all": ["autogroup:member"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:all"], "models": ["llama"] } ],
}`

// assertAlternated checks that consecutive connections through the proxy
// went to different replicas and that every replica served some.
func assertAlternated(t *testing.T, c *cluster, served []int) {
	t.Helper()
	seen := map[int]bool{}
	for i, r := range served {
		seen[r] = true
		if i > 0 && served[i-1] == r {
			t.Fatalf("connections %d and %d both went to replica %d: %v", i-1, i, r, served)
		}
	}
	if len(seen) != len(c.reps) {
		t.Fatalf("only replicas %v served the sign-in: %v", seen, served)
	}
}

// TestSignInAcrossReplicas: account setup, a device sign-in and a UI
// sign-in through the embedded IdP, every page and call on the next
// replica; then the UI session works on every replica.
func TestSignInAcrossReplicas(t *testing.T) {
	c := startCluster(t, 3)
	before := len(c.proxy.served())
	alice := c.addPerson(t, "alice@example.com", true)
	res := c.signIn(t, alice, "laptop")
	served := c.proxy.served()[before:]
	if len(served) < 10 {
		t.Fatalf("the sign-in took only %d connections", len(served))
	}
	assertAlternated(t, c, served)
	if res.Credential == "" || res.DeviceID == "" {
		t.Fatalf("login result: %+v", res)
	}
	// The credential works on every replica.
	for i, r := range c.reps {
		if err := firstNetmap(client(t, r.URL, res.Credential)); err != nil {
			t.Fatalf("the device's netmap from replica %d: %v", i, err)
		}
	}

	b := c.signInUI(t, alice)
	for i, r := range c.reps {
		page := get(t, b, r.URL+"/ui/devices")
		if !page.Contains("laptop") {
			t.Fatalf("replica %d's devices page does not show alice's laptop:\n%s", i, page.Body)
		}
	}
}

var errGotNetmap = errors.New("got a netmap")

// firstNetmap opens a netmap stream and returns nil once a netmap
// arrives.
func firstNetmap(cl *control.Client) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Stream(ctx, 0, func(*wire.NetMap) error { return errGotNetmap }); !errors.Is(err, errGotNetmap) {
		return err
	}
	return nil
}

// TestRevocationAcrossReplicas: a device streams from replica 0, a node
// on each replica lists it; an admin revokes it on replica 1. The
// device's stream ends and every node drops its key within
// revocationBudget.
func TestRevocationAcrossReplicas(t *testing.T) {
	c := startCluster(t, 3)
	c.reps[0].SavePolicy(t, meshPolicy)
	alice := c.addPerson(t, "alice@example.com", false)
	var nodes []*stream
	for i, r := range c.reps {
		cred, _ := enrollNode(t, r, fmt.Sprintf("gpu-%d", i), "llama")
		nodes = append(nodes, openStream(t, client(t, r.URL, cred)))
	}
	const rounds = 3
	var took []time.Duration
	for round := range rounds {
		res := c.signIn(t, alice, fmt.Sprintf("laptop-%d", round))
		dev := openStream(t, client(t, c.reps[0].URL, res.Credential))
		dev.next(t, "the device's first netmap", 10*time.Second, func(nm *wire.NetMap) bool { return len(nm.Peers) == len(c.reps) })
		for i, n := range nodes {
			n.next(t, fmt.Sprintf("node %d listing the device", i), 10*time.Second, hasPeer(res.DeviceID))
		}
		start := time.Now()
		c.reps[1].Admin(t, "POST", "/devices/"+string(res.DeviceID)+"/revoke", "")
		var last time.Time
		for i, n := range nodes {
			last = latest(last, n.next(t, fmt.Sprintf("node %d without the device", i), 10*time.Second, not(hasPeer(res.DeviceID))))
		}
		select {
		case <-dev.errc:
			last = latest(last, time.Now())
		case <-time.After(10 * time.Second):
			t.Fatal("the revoked device's stream on replica 0 did not end")
		}
		took = append(took, last.Sub(start))
	}
	t.Logf("revocation on replica 1 → stream on replica 0 ended and every node's netmap dropped the key: %v", took)
	for _, d := range took {
		if d > revocationBudget {
			t.Errorf("a revocation took %v to reach every replica, want at most %v (all: %v)", d, revocationBudget, took)
		}
	}
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// TestReplicaKilledMidStream: the replica serving a device's stream dies;
// while the device cannot reach any replica, a node joins through a
// third. The device reconnects through the proxy to another replica and
// gets the netmap with that node.
func TestReplicaKilledMidStream(t *testing.T) {
	c := startCluster(t, 3)
	c.reps[0].SavePolicy(t, meshPolicy)
	alice := c.addPerson(t, "alice@example.com", false)
	res := c.signIn(t, alice, "laptop")
	_, node1 := enrollNode(t, c.reps[0], "gpu-1", "llama")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan *wire.NetMap, 64)
	before := len(c.proxy.served())
	go client(t, c.proxy.URL(), res.Credential).Watch(ctx, func(nm *wire.NetMap) { got <- nm }, func(error) {})
	waitNetmap(t, got, "the first netmap", hasPeer(node1))
	served := c.proxy.served()
	if len(served) != before+1 {
		t.Fatalf("the stream took %d connections", len(served)-before)
	}
	victim := served[len(served)-1]

	release := c.proxy.hold() // the device cannot reconnect yet
	c.reps[victim].Stop()
	next := c.proxy.upcoming()
	if next == victim {
		next = (victim + 1) % len(c.reps)
	}
	third := 3 - victim - next // the replica the device will not reach
	_, node2 := enrollNode(t, c.reps[third], "gpu-2", "llama")
	release()
	nm := waitNetmap(t, got, "the node that joined while the device was cut off", hasPeer(node2))
	if !hasPeer(node1)(nm) {
		t.Fatalf("netmap after the reconnect lost the first node: %+v", nm.Peers)
	}
	if s := c.proxy.served(); s[len(s)-1] != next {
		t.Fatalf("the device reconnected to replica %d, want %d (dead: %d, change made on: %d)", s[len(s)-1], next, victim, third)
	}
}

func waitNetmap(t *testing.T, got <-chan *wire.NetMap, what string, ok func(*wire.NetMap) bool) *wire.NetMap {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case nm := <-got:
			if ok(nm) {
				return nm
			}
		case <-deadline:
			t.Fatalf("no netmap with %s within 15 s", what)
		}
	}
}

// TestPolicyConflictAcrossReplicas: two admins edit the same policy
// version and save on different replicas at once; one wins, the other
// is told of the conflict.
func TestPolicyConflictAcrossReplicas(t *testing.T) {
	c := startCluster(t, 3)
	c.reps[0].SavePolicy(t, meshPolicy)
	var cur struct{ ID int64 }
	if err := json.Unmarshal([]byte(c.reps[0].Admin(t, "GET", "/policy", "")), &cur); err != nil || cur.ID == 0 {
		t.Fatalf("current policy: %v, id %d", err, cur.ID)
	}
	var wg sync.WaitGroup
	status := make([]int, 2)
	for i := range status {
		r := c.reps[i+1]
		body, _ := json.Marshal(map[string]any{"text": meshPolicy + fmt.Sprintf("\n// edit %d\n", i), "message": "edit", "base": cur.ID})
		wg.Go(func() { status[i] = putPolicy(t, r, string(body)) })
	}
	wg.Wait()
	slices.Sort(status)
	if status[0] != http.StatusOK || status[1] != http.StatusConflict {
		t.Fatalf("two saves over version %d on different replicas: %v, want one 200 and one 409", cur.ID, status)
	}
}

// putPolicy saves a policy through r's admin API and returns the status.
func putPolicy(t *testing.T, r *coordtest.Coord, body string) int {
	req, _ := http.NewRequest("PUT", r.URL+"/api/v1/admin/policy", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken(t, r))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// TestOnlineAcrossReplicas: every replica's UI says the same about which
// devices are online, wherever their streams are.
func TestOnlineAcrossReplicas(t *testing.T) {
	c := startCluster(t, 3)
	alice := c.addPerson(t, "alice@example.com", true)
	res := c.signIn(t, alice, "laptop")
	b := c.signInUI(t, alice)
	onlineEverywhere := func(want string) {
		t.Helper()
		for i, r := range c.reps {
			if page := get(t, b, r.URL+"/ui/"); !page.Contains(want) {
				t.Fatalf("replica %d's overview does not say %q:\n%s", i, want, page.Body)
			}
		}
	}
	onlineEverywhere(`<span class="n">0</span> of 1 devices online`)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- client(t, c.reps[2].URL, res.Credential).Stream(ctx, 0, func(*wire.NetMap) error { return nil })
	}()
	waitFor(t, "the device to be online", func() bool {
		page := get(t, b, c.reps[0].URL+"/ui/")
		return page.Contains(`<span class="n">1</span> of 1 devices online`)
	})
	onlineEverywhere(`<span class="n">1</span> of 1 devices online`)
	cancel()
	<-done
	waitFor(t, "the device to be offline", func() bool {
		page := get(t, b, c.reps[1].URL+"/ui/")
		return page.Contains(`<span class="n">0</span> of 1 devices online`)
	})
	onlineEverywhere(`<span class="n">0</span> of 1 devices online`)
}

// waitFor checks cond every 20 ms until it holds, for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("waited 10 s for %s", what)
		}
	}
}

func adminToken(t *testing.T, r *coordtest.Coord) string {
	tok, err := coordinator.CreateAPIToken(context.Background(), r.Store(), "ha", "test", 0)
	if err != nil {
		t.Error(err)
	}
	return tok
}
