package e2e

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/wire"
)

func TestWholeSystem(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The coordinator, with the embedded provider and SQLite, and a node
	// serving llama from the stand-in.
	sys := Start(t)
	coord := sys.Coord
	n := sys.AddNode(t, "gpu-1", "llama").Node()

	// Alice signs in through the embedded provider and brings her device
	// up: the real client library, as `moat up` runs it.
	dir := SignInDevice(t, ctx, coord, coord.AddPerson(t, "alice@example.com", false), "laptop", coord.URL, "")
	cl := StartClient(t, client.Config{StateDir: string(dir)})
	var nodeAddr netip.Addr
	if WaitNetMap(cl, 10*time.Second, func(nm *wire.NetMap) bool {
		for _, p := range nm.Peers {
			if string(p.Identity.DeviceID) == string(n.DeviceID()) && len(p.Models) == 1 {
				nodeAddr = p.Addresses[0]
			}
		}
		return nodeAddr.IsValid()
	}) == nil {
		t.Fatal("alice's device never saw the node")
	}

	// A streamed chat completion through the mesh and the guard.
	hc := &http.Client{Transport: &http.Transport{DialContext: cl.Dial}, Timeout: 20 * time.Second}
	req, _ := http.NewRequest("POST", "http://"+netip.AddrPortFrom(nodeAddr, 80).String()+"/v1/chat/completions",
		strings.NewReader(`{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Moat-User", "mallory@example.com") // spoofing changes nothing
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		if resp, err = hc.Do(req.Clone(ctx)); err == nil || time.Now().After(deadline) {
			break
		}
		req.Body = io.NopCloser(strings.NewReader(`{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("chat completion: %d %s", resp.StatusCode, body)
	}
	if chunks, done, err := ReadChatStream(resp.Body); err != nil || !done || !slices.Equal(chunks, StandinChunks()) {
		t.Fatalf("stream through the mesh: chunks %q, done %v, err %v; want %q", chunks, done, err, StandinChunks())
	}

	// The same through the client's local endpoint and its router.
	local, err := http.Post(cl.Endpoint()+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer local.Body.Close()
	if chunks, done, err := ReadChatStream(local.Body); local.StatusCode != 200 || err != nil || !done || !slices.Equal(chunks, StandinChunks()) {
		t.Fatalf("stream through the local endpoint: %d, chunks %q, done %v, err %v", local.StatusCode, chunks, done, err)
	}

	// The audit record reaches the coordinator, attributed to alice.
	deadline := time.Now().Add(20 * time.Second)
	for {
		out := coord.Admin(t, "GET", "/audit?login=alice@example.com", "")
		if strings.Contains(out, `"decision":"allow"`) && strings.Contains(out, "llama") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record for alice's request at the coordinator: %s", out)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// With the coordinator gone, the node keeps serving what the last
	// netmap allows.
	coord.Stop()
	req2, _ := http.NewRequest("POST", "http://"+netip.AddrPortFrom(nodeAddr, 80).String()+"/v1/chat/completions",
		strings.NewReader(`{"model":"llama","messages":[{"role":"user","content":"still there?"}]}`))
	req2.Header.Set("Content-Type", "application/json")
	resp2, err := hc.Do(req2)
	if err != nil {
		t.Fatalf("request with the coordinator stopped: %v", err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusOK {
		t.Fatalf("with the coordinator stopped the node answered %d, want 200", resp2.StatusCode)
	}
}
