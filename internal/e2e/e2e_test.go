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

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/key"
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

	// Alice signs in through the embedded provider and brings her device up.
	dev, c := signIn(t, ctx, coord, coord.AddPerson(t, "alice@example.com", false))
	eng, err := engine.New(engine.Config{PrivateKey: dev})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	nmc := make(chan *wire.NetMap, 16)
	go c.Watch(ctx, func(nm *wire.NetMap) {
		if err := eng.Reconfig(nm); err == nil {
			nmc <- nm
		}
	}, func(error) {})
	var nodeAddr netip.Addr
	for nodeAddr.IsValid() == false {
		select {
		case nm := <-nmc:
			for _, p := range nm.Peers {
				if string(p.Identity.DeviceID) == string(n.DeviceID()) && len(p.Models) == 1 {
					nodeAddr = p.Addresses[0]
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatal("alice's device never saw the node")
		}
	}

	// A streamed chat completion through the mesh and the guard.
	hc := &http.Client{Transport: &http.Transport{DialContext: eng.Dial}, Timeout: 20 * time.Second}
	req, _ := http.NewRequest("POST", "http://"+netip.AddrPortFrom(nodeAddr, 80).String()+"/v1/chat/completions",
		strings.NewReader(`{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Moat-User", "mallory@example.com") // spoofing changes nothing
	var resp *http.Response
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

// signIn signs a new device key in as p through the browser flow and
// returns the key and a control client with the device's credential.
func signIn(t *testing.T, ctx context.Context, coord *coordtest.Coord, p *coordtest.Person) (key.Private, *control.Client) {
	t.Helper()
	priv, cred := signInCredential(t, ctx, coord, p)
	c, _ := control.New(control.Config{URL: coord.URL, Credential: cred})
	return priv, c
}

// signInCredential signs a new device key in as p through the browser
// flow and returns the key and the device's credential.
func signInCredential(t *testing.T, ctx context.Context, coord *coordtest.Coord, p *coordtest.Person) (key.Private, wire.Secret) {
	t.Helper()
	priv, _ := key.NewPrivate()
	c, _ := control.New(control.Config{URL: coord.URL})
	start, err := c.StartLogin(ctx, wire.LoginRequest{Key: priv.Public(), Hostname: "laptop"})
	if err != nil {
		t.Fatal(err)
	}
	if err := coord.SignIn(start.AuthURL, p); err != nil {
		t.Fatal(err)
	}
	res, err := c.WaitLogin(ctx, start.Poll)
	if err != nil {
		t.Fatal(err)
	}
	return priv, res.Credential
}
