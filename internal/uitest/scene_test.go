package uitest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/e2e"
	"github.com/moatmesh/moat/internal/standin"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/guard"
	"github.com/moatmesh/moat/node/mcpguard/mcptest"
)

// The names the scene is built from; the scripts get them in env vars.
const (
	adminEmail  = "ada@example.com"
	userEmail   = "alice@example.com" // member; makes the request
	memberEmail = "bob@example.com"   // member; owns the hostile device
	nodeName    = "gpu-1"
	laptopName  = "alice-laptop"
	model       = "llama"
	passkeyName = "YubiKey 5C" // alice's step-up passkey, which the admin resets
	// hostile names, shown to admins: each must appear as text.
	evilDevice = "<script>alert(1)</script>"
	evilNode   = `<img src=x onerror=alert(2)>`
)

// policy grants group:ml (alice) llama, prices it and gives the group a
// money budget and everyone a token budget of their own. Its tests pass;
// the script edits it so that one fails.
const policy = `// The policy of the UI test scene.
{
  "groups": { "group:ml": ["alice@example.com"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "mcp": { "jira": { "servedBy": ["tag:gpu"], "description": "Jira over MCP", "egress": ["jira.corp.example:443"] } },
  "grants": [
    { "src": ["group:ml"], "models": ["llama"], "audit": { "prompts": "hash" } },
    { "src": ["group:ml"], "mcp": ["jira:get_issue", "jira:search_*"] },
  ],
  "tests": [
    { "src": "alice@example.com", "accept": ["model:llama"] },
    { "src": "bob@example.com", "deny": ["model:llama"] },
  ],
  "budgets": {
    "currency": "EUR",
    "prices": { "llama": { "input": 0.50, "output": 1.50 } },
    "limits": [
      { "for": "group:ml", "per": "month", "money": { "warn": 80, "limit": 100 } },
      { "for": "autogroup:member", "each": true, "per": "day", "tokens": { "limit": 100000 } },
    ],
  },
}
`

// scene is everything the scripts look at.
type scene struct {
	coord         *coordtest.Coord
	admin, member *coordtest.Person // member: bob, who signs in to the UI
	auditID       string            // the record of alice's request
}

// buildScene starts the coordinator, a node serving the stand-in, the
// people and their devices, and makes one request through the guard. It
// returns once the request's audit record is at the coordinator.
// Everything stops when the test ends.
func buildScene(t *testing.T) *scene {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	// A release key, so that the Nodes page gives an install command
	// (without one it says how to set it).
	c := coordtest.Start(t, func(cfg *coordinator.Config) {
		cfg.ReleaseKey = "RWRuurrjpnPMYaNdZ5sDzdOzMuABLXxuoXr+D5OqOTGJT11sELqGFu4Y"
	})
	c.SavePolicy(t, policy)
	sc := &scene{coord: c, admin: c.AddPerson(t, adminEmail, true)}
	alice := c.AddPerson(t, userEmail, false)
	sc.member = c.AddPerson(t, memberEmail, false)

	n := startNode(t, ctx, &wg, c)
	enrollBare(t, ctx, c, evilNode)

	// bob's hostile device is only signed in; alice's laptop joins the mesh.
	hostileDevice(t, ctx, c, e2e.SignInDevice(t, ctx, c, sc.member, "bob-device", c.URL, ""))
	dir := e2e.SignInDevice(t, ctx, c, alice, laptopName, c.URL, "")
	laptop := e2e.StartClient(t, client.Config{StateDir: string(dir)})
	addr := nodeAddr(t, laptop, n.DeviceID())
	chat(t, ctx, laptop, addr)
	callTools(t, laptop, addr)
	sc.auditID = awaitAudit(t, c)
	awaitMCPAudit(t, c)
	coordinatorFactors(t, ctx, c, userEmail)
	return sc
}

// coordinatorFactors gives email second factors of the coordinator's own
// (its step-up), which an admin resets in the script: an authenticator
// app and a device-bound passkey, as enrolling them would store them.
func coordinatorFactors(t *testing.T, ctx context.Context, c *coordtest.Coord, email string) {
	users, err := c.Store().Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Email != email {
			continue
		}
		if err := c.Store().ClaimTOTPStep(ctx, u.ID, 1, []byte("a sealed app secret")); err != nil {
			t.Fatal(err)
		}
		pk := &store.Passkey{ID: []byte("yubikey-1"), UserID: u.ID, Name: passkeyName,
			Data: []byte(`{"flags":{"userPresent":true,"userVerified":true,"backupEligible":false}}`), Created: c.Clock.Now()}
		if err := c.Store().CreatePasskey(ctx, pk); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no user %s", email)
}

// startNode enrolls and runs a node serving the stand-in as llama.
func startNode(t *testing.T, ctx context.Context, wg *sync.WaitGroup, c *coordtest.Coord) *node.Node {
	up, err := standin.Start(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	netstack, port := engine.Netstack, freeUDPPort(t)
	n, err := node.Start(ctx, node.Config{
		Coordinator: c.URL, EnrollKey: wire.Secret(c.EnrollKey(t, "tag:gpu")), StateDir: t.TempDir(), Hostname: nodeName,
		Models:  []node.Model{{Name: model, Upstream: guard.Upstream{URL: up.URL, Kind: guard.KindOpenAI}}},
		MCP:     map[string]string{"jira": mcptest.Jira(t)},
		Backend: &netstack, ListenPort: port, Endpoints: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)},
	})
	if err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); n.Run(ctx) }()
	t.Cleanup(func() { n.Close() })
	return n
}

// enrollBare enrolls a node named hostname that never runs: it is only
// listed.
func enrollBare(t *testing.T, ctx context.Context, c *coordtest.Coord, hostname string) {
	priv, _ := key.NewPrivate()
	cl, err := control.New(control.Config{URL: c.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Enroll(ctx, wire.EnrollRequest{AuthKey: wire.Secret(c.EnrollKey(t, "tag:gpu")), Key: priv.Public(), Hostname: hostname}); err != nil {
		t.Fatal(err)
	}
}

// hostileDevice names the device signed in from dir evilDevice. Sign-ins
// accept only plain hostnames now, so the name goes into the store, as
// one recorded by an older coordinator would be there.
func hostileDevice(t *testing.T, ctx context.Context, c *coordtest.Coord, dir client.Dir) {
	l, err := dir.LoadLogin()
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Store().Device(ctx, string(l.DeviceID))
	if err != nil {
		t.Fatal(err)
	}
	d.Hostname = evilDevice
	if err := c.Store().UpdateDevice(ctx, d); err != nil {
		t.Fatal(err)
	}
}

func freeUDPPort(t *testing.T) uint16 {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

// nodeAddr waits for the laptop's netmap to offer the node nodeID and
// returns its mesh address.
func nodeAddr(t *testing.T, laptop *client.Client, nodeID wire.DeviceID) netip.Addr {
	var addr netip.Addr
	if e2e.WaitNetMap(laptop, 15*time.Second, func(nm *wire.NetMap) bool {
		for _, p := range nm.Peers {
			if p.Identity.DeviceID == nodeID && len(p.Models) > 0 && len(p.Addresses) > 0 {
				addr = p.Addresses[0]
			}
		}
		return addr.IsValid()
	}) == nil {
		t.Fatal("alice's device never saw the node")
	}
	return addr
}

// chat makes one chat completion through the laptop's engine, the mesh
// and the node's guard.
func chat(t *testing.T, ctx context.Context, laptop *client.Client, addr netip.Addr) {
	hc := &http.Client{Transport: &http.Transport{DialContext: laptop.Dial}, Timeout: 20 * time.Second}
	url := "http://" + netip.AddrPortFrom(addr, 80).String() + "/v1/chat/completions"
	body := `{"model":"llama","messages":[{"role":"user","content":"hello from the UI test"}]}`
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if resp, err = hc.Do(req); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("request through the guard: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "stand-in") {
		t.Fatalf("request through the guard: %d %s", resp.StatusCode, b)
	}
}

// callTools calls the jira MCP server's granted get_issue and the
// ungranted delete_issue through the laptop's engine and the guard.
func callTools(t *testing.T, laptop *client.Client, addr netip.Addr) {
	hc := &http.Client{Transport: &http.Transport{DialContext: laptop.Dial}, Timeout: 20 * time.Second}
	cs := mcptest.Connect(t, "http://"+netip.AddrPortFrom(addr, 80).String()+"/mcp/jira", hc)
	if _, err := mcptest.Call(cs, "get_issue", map[string]any{"id": "OPS-1"}); err != nil {
		t.Fatalf("get_issue through the guard: %v", err)
	}
	if _, err := mcptest.Call(cs, "delete_issue", map[string]any{"id": "OPS-1"}); err == nil {
		t.Fatal("delete_issue through the guard was not refused")
	}
}

// awaitMCPAudit waits until the coordinator holds the records of both
// tool calls.
func awaitMCPAudit(t *testing.T, c *coordtest.Coord) {
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var out struct {
			Records []struct{ API, Decision string }
		}
		body := c.Admin(t, "GET", "/audit?login="+userEmail, "")
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("audit answer: %v: %s", err, body)
		}
		allowed, refused := 0, 0
		for _, r := range out.Records {
			switch {
			case r.API != "mcp":
			case r.Decision == "allow":
				allowed++
			default:
				refused++
			}
		}
		if allowed > 0 && refused > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit records of alice's tool calls at the coordinator: %s", body)
		}
	}
}

// awaitAudit waits until the coordinator holds the record of alice's
// request and returns its ID.
func awaitAudit(t *testing.T, c *coordtest.Coord) string {
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var out struct {
			Records []struct{ ID, Model, Decision string }
		}
		body := c.Admin(t, "GET", "/audit?login="+userEmail, "")
		if err := json.Unmarshal([]byte(body), &out); err != nil {
			t.Fatalf("audit answer: %v: %s", err, body)
		}
		for _, r := range out.Records {
			if r.Model == model && r.Decision == "allow" {
				return r.ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record of alice's request at the coordinator: %s", body)
		}
	}
}
