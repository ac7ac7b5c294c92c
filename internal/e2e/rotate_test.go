package e2e

import (
	"context"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/client"
)

// TestNodeCredentialRotatesUnderTraffic: with a credential lifetime of
// 3 s the node rotates its credential about every 2 s while
// requests flow through it; not one request fails, every audit record
// (shipped with whichever credential was current) reaches the
// coordinator, and the node's netmap stream still brings it changes.
func TestNodeCredentialRotatesUnderTraffic(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// 3 s: renewal two thirds in leaves a second's margin on a loaded machine.
	sys := Start(t, func(c *coordinator.Config) { c.NodeCredentialTTL = 3 * time.Second })
	// Signing in moves the coordinator's clock on (TOTP steps), which
	// would age the node's credentials: alice signs in first.
	alice := sys.Coord.AddPerson(t, "alice@example.com", false)
	laptop := SignInDevice(t, ctx, sys.Coord, alice, "laptop", sys.Coord.URL, "")
	gpu := sys.AddNode(t, "gpu-1", "llama")
	nodeID := string(gpu.Node().DeviceID())
	cl := StartClient(t, client.Config{StateDir: string(laptop)})
	waitUntil(t, "the client to be offered llama", func() bool { nm := cl.NetMap(); return nm != nil && offers(nm, "llama") })

	st := sys.Coord.Store()
	var mu sync.Mutex
	seen := map[string]bool{}
	note := func() int {
		cs, err := st.CurrentNodeCredentials(ctx)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if c := cs[nodeID]; c != nil {
			seen[hex.EncodeToString(c.Hash)] = true
		}
		return len(seen)
	}
	note()
	var sent, failed int
	var wg sync.WaitGroup
	var reqMu sync.Mutex
	start := time.Now()
	for w := range 2 {
		wg.Go(func() {
			pace := time.NewTicker(20 * time.Millisecond) // keeps the audit trail small
			defer pace.Stop()
			for ; time.Since(start) < 7*time.Second || note() < 4; <-pace.C {
				if time.Since(start) > 60*time.Second {
					t.Errorf("worker %d: fewer than 3 rotations in a minute", w)
					return
				}
				code, body := chat(t, cl.Endpoint())
				reqMu.Lock()
				sent++
				if code != http.StatusOK {
					failed++
					t.Errorf("request %d during rotation: %d %s", sent, code, body)
				}
				reqMu.Unlock()
			}
		})
	}
	wg.Wait()
	rotations := note() - 1
	t.Logf("%d requests, %d failed, during %d credential rotations in %v", sent, failed, rotations, time.Since(start).Round(time.Millisecond))
	if failed > 0 || rotations < 3 {
		t.Fatalf("%d of %d requests failed across %d rotations", failed, sent, rotations)
	}

	// Every audit record arrives: the shipper follows the rotations.
	waitUntil(t, "every audit record at the coordinator", func() bool {
		rs, err := st.Audit(ctx, store.AuditFilter{Login: "alice@example.com", Limit: 10_000})
		return err == nil && len(rs) >= sent
	})
	// The node's netmap stream still works: a policy change reaches it.
	before := gpu.Node().Member().NetMap().Seq
	sys.Coord.SavePolicy(t, strings.Replace(Policy, `"mfa": "12h"`, `"mfa": "12h", "limits": { "rpm": 100000 }`, 1))
	waitUntil(t, "the node to get the new policy", func() bool { return gpu.Node().Member().NetMap().Seq > before })
	if code, body := chat(t, cl.Endpoint()); code != http.StatusOK {
		t.Fatalf("after the rotations: %d %s", code, body)
	}
}

// chat sends one chat completion through a client's local endpoint.
func chat(t *testing.T, endpoint string) (int, string) {
	resp, err := http.Post(endpoint+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"llama","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
