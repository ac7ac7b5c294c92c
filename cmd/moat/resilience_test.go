package main

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/client"
)

// TestCoordinatorRestart: with the coordinator down the client serves
// from its last netmap; when the coordinator comes back on the same
// address and data directory the client reconnects by itself and takes a
// change made after the restart (a new node, then a revocation).
func TestCoordinatorRestart(t *testing.T) {
	f := startMesh(t, "gpu-1")
	f.sys.Coord.Stop()
	waitFor(t, "status to say the coordinator is unreachable", func() bool {
		s, err := client.FetchStatus(context.Background(), client.Dir(f.dir))
		return err == nil && strings.Contains(s.Problem, "cannot reach the coordinator")
	})
	if a := f.chat(5 * time.Second); !a.served() {
		t.Fatalf("with the coordinator down: %s", a)
	}

	f.sys.Coord.Restart(t)
	gpu2 := f.sys.AddNode(t, "gpu-2", "llama")
	waitFor(t, "the client to see gpu-2", func() bool {
		s, err := client.FetchStatus(context.Background(), client.Dir(f.dir))
		return err == nil && s.Connected && slices.ContainsFunc(s.Nodes, func(n client.NodeStatus) bool { return n.Name == "gpu-2" })
	})
	waitFor(t, "a request to reach gpu-2", func() bool {
		if a := f.chat(5 * time.Second); !a.served() {
			t.Fatalf("after the restart: %s", a)
		}
		return gpu2.Requests() > 0
	})
	if !strings.Contains(f.upErr.String(), "moat: connected to the coordinator") {
		t.Errorf("moat up did not say it reconnected:\n%s", f.upErr)
	}

	f.sys.Coord.Admin(t, "POST", "/devices/"+f.deviceID(t)+"/revoke", "")
	waitFor(t, "the revocation to reach the client", func() bool {
		return f.chat(time.Second).status == http.StatusUnauthorized
	})
	f.stillUp(t)
}

// TestNodeRestart: a node that stops and starts again from its state
// directory is reached again without a new login.
func TestNodeRestart(t *testing.T) {
	f := startMesh(t, "gpu-1")
	gpu1 := f.nodes[0]
	before, _ := client.Dir(f.dir).LoadLogin()

	gpu1.Stop()
	if a := f.chat(5 * time.Second); a.served() || a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "gpu-1") {
		t.Fatalf("with the only node stopped: %s; want a 503 naming it", a)
	}
	served := gpu1.Requests()
	gpu1.Restart(t)
	began := time.Now()
	f.waitServed(t, "the restarted node to answer")
	t.Logf("restarted node answered after %v", time.Since(began).Round(time.Millisecond))
	if gpu1.Requests() <= served {
		t.Fatal("the answer did not come from the restarted node")
	}
	after, _ := client.Dir(f.dir).LoadLogin()
	if after.Credential != before.Credential {
		t.Fatal("the client signed in again")
	}
}
