package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/testlog"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node"
)

// portTaker is a member sink that takes the guard's port on the node's
// mesh addresses with the first netmap, before the guard tries to.
type portTaker struct {
	eng *engine.Engine
	mu  sync.Mutex
	ln  net.Listener
}

func (p *portTaker) SetNetMap(*wire.NetMap) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	ln, err := p.eng.Listen("tcp", ":80")
	p.ln = ln
	return err
}

func (p *portTaker) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ln.Close()
}

// TestNodeWhoseGuardCannotListen: a node whose guard port is taken on
// the mesh stops advertising its models (the coordinator records none,
// clients are offered none), logs the reason as an error and reports it
// through GuardError; once the port is free it serves them again.
func TestNodeWhoseGuardCannotListen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sys := Start(t)
	logs := &testlog.Buffer{}
	var taker *portTaker
	gpu := sys.AddNodeWith(t, "gpu-1", NodeOptions{
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
		BeforeRun: func(n *node.Node) {
			taker = &portTaker{eng: n.Engine()}
			n.Member().AddSink(taker) // before the guard listens: Ready follows every sink
		},
	}, "llama")
	dir := SignInDevice(t, ctx, sys.Coord, sys.Coord.AddPerson(t, "alice@example.com", false), "laptop", sys.Coord.URL, "")
	cl := StartClient(t, client.Config{StateDir: string(dir)})

	waitUntil(t, "the node to say its guard cannot listen", func() bool { return gpu.Node().GuardError() != nil })
	if why := gpu.Node().GuardError().Error(); !strings.Contains(why, "guard cannot listen on the mesh (port 80)") || !strings.Contains(why, "in use") {
		t.Errorf("GuardError = %q; want the port and the cause", why)
	}
	waitUntil(t, "the coordinator to record no models for the node", func() bool { return len(nodeModels(t, sys, "gpu-1")) == 0 })
	if WaitNetMap(cl, 10*time.Second, func(nm *wire.NetMap) bool { return !offers(nm, "llama") }) == nil {
		t.Fatal("the client is still offered llama by a node that cannot serve it")
	}
	if out := logs.String(); !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "no longer advertising") || !strings.Contains(out, "in use") {
		t.Errorf("the node did not log the reason as an error:\n%s", out)
	}

	// The port comes free: the node listens, advertises llama and serves it.
	taker.release()
	waitUntil(t, "the guard to listen again", func() bool { return gpu.Node().GuardError() == nil })
	waitUntil(t, "the coordinator to record llama again", func() bool {
		return slices.Contains(nodeModels(t, sys, "gpu-1"), "llama")
	})
	if WaitNetMap(cl, 10*time.Second, func(nm *wire.NetMap) bool { return offers(nm, "llama") }) == nil {
		t.Fatal("the client is not offered llama again")
	}
	resp, err := http.Post(cl.Endpoint()+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"llama","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || gpu.Requests() == 0 {
		t.Fatalf("after the port came free: %d, %d requests at the node", resp.StatusCode, gpu.Requests())
	}
}

// offers reports whether a peer in nm serves model.
func offers(nm *wire.NetMap, model string) bool {
	for _, p := range nm.Peers {
		if slices.Contains(p.Models, model) {
			return true
		}
	}
	return false
}

// nodeModels is what the coordinator records the node called hostname as
// serving.
func nodeModels(t *testing.T, sys *System, hostname string) []string {
	t.Helper()
	var out struct {
		Devices []struct {
			Hostname string `json:"hostname"`
			Models   []struct {
				Name string `json:"name"`
			} `json:"models"`
		} `json:"devices"`
	}
	if err := json.Unmarshal([]byte(sys.Coord.Admin(t, "GET", "/devices?kind=node", "")), &out); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range out.Devices {
		if d.Hostname == hostname {
			for _, m := range d.Models {
				names = append(names, m.Name)
			}
		}
	}
	return names
}

// waitUntil polls cond until it holds, failing after 15 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(15 * time.Second); !cond(); <-tick.C {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
