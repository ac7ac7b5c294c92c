package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

const tailnetPolicy = `{
  "tagOwners": { "tag:gpu": [] },
  "models": { "m": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["%s"], "models": ["m"] } ],
}`

// enrollTailnetNode enrolls a node as moat-node tailnet does: no models,
// no endpoints.
func enrollTailnetNode(t *testing.T, c *coordtest.Coord) (*control.Client, wire.DeviceID) {
	t.Helper()
	ctl, err := control.New(control.Config{URL: c.URL})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := key.NewPrivate()
	res, err := ctl.Enroll(context.Background(), wire.EnrollRequest{AuthKey: wire.Secret(c.EnrollKey(t, "tag:gpu")), Key: priv.Public(), Hostname: "gpu-1"})
	if err != nil {
		t.Fatal(err)
	}
	return ctl.WithCredential(res.Credential), res.DeviceID
}

var errEnough = errors.New("enough maps")

// tailnetMaps reads n maps from the node's tailnet stream.
func tailnetMaps(t *testing.T, ctl *control.Client, n int, between func(i int)) []*wire.TailnetMap {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*wire.TailnetMap
	err := ctl.TailnetStream(ctx, wire.TailnetRequest{Models: []wire.ModelAd{{Name: "m"}}}, func(m *wire.TailnetMap) error {
		out = append(out, m)
		if len(out) == n {
			return errEnough
		}
		between(len(out) - 1)
		return nil
	})
	if !errors.Is(err, errEnough) {
		t.Fatalf("tailnet stream after %d maps: %v", len(out), err)
	}
	return out
}

// TestTailnetStream: without the opt-in a tailnet node is refused its
// stream; with it, it gets the granted people and a new map when the
// policy changes; a person's device is refused the stream; and mesh
// members never see the tailnet node.
func TestTailnetStream(t *testing.T) {
	off := coordtest.Start(t)
	off.SavePolicy(t, fmt.Sprintf(tailnetPolicy, "alice@example.com"))
	ctl, _ := enrollTailnetNode(t, off)
	err := ctl.TailnetStream(context.Background(), wire.TailnetRequest{}, func(*wire.TailnetMap) error { return nil })
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Status != http.StatusForbidden || ce.Code != wire.CodeTailnetOff {
		t.Fatalf("without --tailnet-logins: %v; want 403 %s", err, wire.CodeTailnetOff)
	}

	c := coordtest.Start(t, func(cfg *coordinator.Config) { cfg.TailnetLogins = true })
	alice, bob := c.AddPerson(t, "alice@example.com", false), c.AddPerson(t, "bob@example.com", false)
	aliceDev, _ := c.SignInDevice(t, alice, "alice-mac")
	bobDev, _ := c.SignInDevice(t, bob, "bob-mac")
	c.SavePolicy(t, fmt.Sprintf(tailnetPolicy, "alice@example.com"))
	ctl, nodeID := enrollTailnetNode(t, c)

	maps := tailnetMaps(t, ctl, 2, func(int) { c.SavePolicy(t, fmt.Sprintf(tailnetPolicy, "bob@example.com")) })
	if p := maps[0].People; len(p) != 1 || p[0].Identity.Login != "alice@example.com" {
		t.Fatalf("first map's people %+v; want alice", p)
	}
	if p := maps[1].People; len(p) != 1 || p[0].Identity.Login != "bob@example.com" || maps[1].Seq <= maps[0].Seq {
		t.Fatalf("after the policy change: people %+v, seq %d after %d; want bob, a later seq", p, maps[1].Seq, maps[0].Seq)
	}

	err = aliceDev.TailnetStream(context.Background(), wire.TailnetRequest{}, func(*wire.TailnetMap) error { return nil })
	if !errors.As(err, &ce) || ce.Status != http.StatusForbidden || ce.Code != "not_a_node" {
		t.Fatalf("a person's device: %v; want 403 not_a_node", err)
	}
	// bob's device may use m now, but no mesh netmap offers the tailnet
	// node: it advertised nothing to the mesh.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = bobDev.Stream(ctx, 0, func(nm *wire.NetMap) error {
		for _, p := range nm.Peers {
			if p.Identity.DeviceID == nodeID {
				t.Errorf("bob's netmap lists the tailnet node: %+v", p)
			}
		}
		return errEnough
	})
	if !errors.Is(err, errEnough) {
		t.Fatal(err)
	}
}

// A tailnet tag that is not tag:NAME is refused at start.
func TestTailnetTagsChecked(t *testing.T) {
	_, err := coordinator.New(context.Background(), coordinator.Config{PublicURL: "http://127.0.0.1:1", DataDir: t.TempDir(), TailnetTags: []string{"ci"}})
	if err == nil || !strings.Contains(err.Error(), "write tag:NAME") {
		t.Fatalf("TailnetTags [ci]: %v; want refused", err)
	}
}
