package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/standin"
	"github.com/moatmesh/moat/mesh/client"
)

// TestNodeDrainsStreamsOnClose: a node told to stop while a stream is
// under way stops taking requests but lets the stream finish, every
// chunk and the end, before it closes.
func TestNodeDrainsStreamsOnClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sys := Start(t)
	gpu := sys.AddNodeWith(t, "gpu-1", NodeOptions{StandinDelay: 40 * time.Millisecond}, "llama")
	dir := SignInDevice(t, ctx, sys.Coord, sys.Coord.AddPerson(t, "alice@example.com", false), "laptop", sys.Coord.URL, "")
	cl := StartClient(t, client.Config{StateDir: string(dir)})
	waitUntil(t, "the client to be offered llama", func() bool { nm := cl.NetMap(); return nm != nil && offers(nm, "llama") })

	// A cut stream is not always seen by the client (the node's engine goes
	// with it), so the request carries a deadline: a cut fails, not hangs.
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, http.MethodPost, cl.Endpoint()+"/v1/chat/completions",
		strings.NewReader(`{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", resp.StatusCode)
	}
	first := make([]byte, 1)
	if _, err := resp.Body.Read(first); err != nil { // the stream has begun
		t.Fatal(err)
	}
	stopped := make(chan time.Time, 1)
	go func() { gpu.Stop(); stopped <- time.Now() }()

	chunks, done, err := ReadChatStream(resp.Body)
	ended := time.Now()
	if err != nil || !done {
		t.Fatalf("the stream was cut by the node's shutdown: done %v, err %v, %d chunks", done, err, len(chunks))
	}
	if got := strings.Join(chunks, ""); !strings.HasSuffix(standin.Answer, got) || len(got) < len(standin.Answer)/2 {
		t.Errorf("stream content %q is not the rest of the answer %q", got, standin.Answer)
	}
	if at := <-stopped; at.Before(ended.Add(-100 * time.Millisecond)) {
		t.Errorf("the node finished closing %v before its stream ended", ended.Sub(at))
	}
}
