package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/e2e"
	"github.com/moatmesh/moat/mesh/client"
)

// meshFixture is the whole system around a real `moat up`: a coordinator
// with e2e.Policy in force, GPU nodes serving llama from stand-ins, and
// alice's device signed in with `moat login` and connected with `moat up`.
type meshFixture struct {
	sys      *e2e.System
	nodes    []*e2e.Node
	alice    *coordtest.Person
	dir      string
	endpoint string // the local endpoint's base URL
	upErr    *syncBuffer
	upDone   <-chan int
}

// deviceTTL is how long device keys stay valid in these tests: short,
// so that a test can let one expire by moving the coordinator's clock a
// little. The clock must stay within the embedded provider's 5-minute ID
// token lifetime of real time, or the next sign-in fails.
const deviceTTL = 2 * time.Minute

// startMesh starts the coordinator, one node per name, and alice's
// `moat up`, and waits until a chat completion goes through.
func startMesh(t *testing.T, nodeNames ...string) *meshFixture {
	t.Helper()
	f := newMesh(t)
	for _, name := range nodeNames {
		f.nodes = append(f.nodes, f.sys.AddNode(t, name, "llama"))
	}
	f.connect(t)
	return f
}

// newMesh starts the coordinator only; add nodes, then connect.
func newMesh(t *testing.T) *meshFixture {
	t.Helper()
	f := &meshFixture{dir: t.TempDir() + "/state"}
	f.sys = e2e.Start(t, func(c *coordinator.Config) { c.DeviceTTL = deviceTTL })
	return f
}

// connect signs alice in, starts her `moat up` and waits until a chat
// completion goes through.
func (f *meshFixture) connect(t *testing.T) {
	t.Helper()
	f.alice = f.sys.Coord.AddPerson(t, "alice@example.com", false)
	signIn(t, f.dir, f.sys.Coord, f.alice)
	_, f.upErr, f.upDone = startUp(t, f.dir)
	f.endpoint = waitConnected(t, f.dir).Endpoint
	f.waitServed(t, "the first chat completion")
}

// answer is the local endpoint's answer to one chat completion.
type answer struct {
	status int
	chunks []string // of a streamed 200
	done   bool     // the stream ended with [DONE]
	body   string   // of anything else
	err    error    // no answer at all
}

// served reports whether the answer is the stand-in's whole stream.
func (a answer) served() bool {
	return a.err == nil && a.status == http.StatusOK && a.done && slices.Equal(a.chunks, e2e.StandinChunks())
}

// chat sends a streamed chat completion for llama to the local endpoint.
func (f *meshFixture) chat(timeout time.Duration) answer {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", f.endpoint+"/v1/chat/completions",
		strings.NewReader(`{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		a.body = string(b)
		return a
	}
	a.chunks, a.done, a.err = e2e.ReadChatStream(resp.Body)
	return a
}

// waitServed polls until a chat completion comes back whole.
func (f *meshFixture) waitServed(t *testing.T, what string) answer {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		a := f.chat(5 * time.Second)
		if a.served() {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last answer: %s\nmoat up said:\n%s", what, a, f.upErr)
		}
		time.Sleep(50 * time.Millisecond) // between polls; nothing to wait on
	}
}

func (a answer) String() string {
	if a.err != nil {
		return a.err.Error()
	}
	return fmt.Sprintf("%d %q done=%v %s", a.status, a.chunks, a.done, a.body)
}

// stillUp fails the test if `moat up` has exited.
func (f *meshFixture) stillUp(t *testing.T) {
	t.Helper()
	select {
	case code := <-f.upDone:
		t.Fatalf("moat up exited (%d):\n%s", code, f.upErr)
	default:
	}
}

// deviceID is alice's device at the coordinator, from the login file.
func (f *meshFixture) deviceID(t *testing.T) string {
	t.Helper()
	l, err := client.Dir(f.dir).LoadLogin()
	if err != nil {
		t.Fatal(err)
	}
	return string(l.DeviceID)
}
