package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/netns"
	"github.com/moatmesh/moat/internal/pgtest"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/relay"
)

// TestReachAcrossReplicas: two coordinator replicas on one PostgreSQL,
// each served over TLS in the coordinator's namespace at its own port.
// The GPU node (under the host lockdown) follows replica 0 and the
// laptop, whose network drops all outbound UDP, replica 1: each attaches
// to its own replica's relay, and the laptop's streamed answer crosses
// the relays' mesh, as alice's in the audit. Revoked, the laptop reaches
// the node no more.
func TestReachAcrossReplicas(t *testing.T) {
	if why := netns.Unavailable(); why != "" {
		t.Skip(why)
	}
	dsn := pgtest.FreshSchema(t, pgtest.URL(t, "the two-replica reach test"))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	hosts := underlay(t, "moat-reps", tunCoordUL, tunGPUUL, tunLaptopUL)
	coordNS, gpuNS, laptopNS := hosts[0], hosts[1], hosts[2]

	var sealKey [32]byte
	rand.Read(sealKey[:])
	cert, fingerprint := selfSigned(t, tunCoordUL.Addr())
	var reps []*coordtest.Coord
	var urls []string
	for range 2 {
		r := coordtest.Start(t, func(cfg *coordinator.Config) {
			cfg.RelayMeshURL = cfg.PublicURL + relay.Path // the replicas mesh on the host's loopback
			cfg.Database, cfg.DataDir = dsn, t.TempDir()
			cfg.SealKey, cfg.SealKeySource = sealKey, "the test's seal key"
		})
		reps, urls = append(reps, r), append(urls, serveInNS(t, coordNS, cert, r.Server))
	}
	reps[0].SavePolicy(t, Policy)
	debug := os.Getenv("MOAT_TEST_LOG") != ""

	gpu := startE2EChild(t, gpuNS, tunChildConfig{Role: "gpu", Coordinator: urls[0], Fingerprint: fingerprint, Debug: debug,
		EnrollKey: reps[0].EnrollKey(t, "tag:gpu"), StateDir: t.TempDir(), Endpoint: netip.AddrPortFrom(tunGPUUL.Addr(), tunWGPort), Lockdown: true})
	var ready gpuReady
	if err := json.Unmarshal([]byte(gpu.Expect(t, "ready ", 20*time.Second)), &ready); err != nil {
		t.Fatal(err)
	}

	deviceID, ask := relayedLaptop(t, ctx, laptopNS, reps[1], urls[1], fingerprint, ready.Node, debug)
	r := ask("chat")
	if r.Err != "" || r.Status != http.StatusOK || !r.Chunks || r.Path != engine.PathRelay || !strings.HasPrefix(r.Relay, urls[1]) {
		t.Fatalf("laptop on replica 1's relay, node on replica 0's: %+v; want a whole answer through %s/derp", r, urls[1])
	}
	t.Logf("a streamed answer across the relays of two replicas in %.2fs", r.Seconds)
	if r.Seconds > firstContact.Seconds() {
		t.Errorf("first answer after %.2fs, want at most %v", r.Seconds, firstContact)
	}
	waitAudit(t, reps[0], 1)

	revokeAndWaitCut(t, reps[0], deviceID, ask)
}

// relayedLaptop signs alice in at coord (reached at coordURL) as a laptop
// in ns, whose outbound UDP it blocks, and starts it asking node;
// it returns the laptop's device ID and a function that asks the laptop
// cmd and decodes its answer.
func relayedLaptop(t *testing.T, ctx context.Context, ns *netns.NS, coord *coordtest.Coord, coordURL, fingerprint, node string, debug bool) (string, func(cmd string) reachResult) {
	t.Helper()
	blockUDP(t, ns)
	dir := SignInDevice(t, ctx, coord, coord.AddPerson(t, "alice@example.com", false), "laptop", coordURL, fingerprint)
	login, err := dir.LoadLogin()
	if err != nil {
		t.Fatal(err)
	}
	laptop := startE2EChild(t, ns, tunChildConfig{Role: "reach", Coordinator: coordURL, Fingerprint: fingerprint, Debug: debug,
		DeviceDir: string(dir), Node: node})
	return string(login.DeviceID), func(cmd string) reachResult {
		t.Helper()
		var r reachResult
		if err := json.Unmarshal([]byte(laptop.Ask(t, cmd, 40*time.Second)), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// revokeAndWaitCut revokes the device at coord and waits until ask's
// laptop gets no more answers.
func revokeAndWaitCut(t *testing.T, coord *coordtest.Coord, deviceID string, ask func(string) reachResult) {
	t.Helper()
	coord.Admin(t, "POST", "/devices/"+deviceID+"/revoke", "")
	for deadline := time.Now().Add(30 * time.Second); ; {
		r := ask("chatonce")
		if r.Err != "" || r.Status != http.StatusOK {
			t.Logf("revoked: %s (status %d)", r.Err, r.Status)
			return // cut off: no answer, or refused
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the revocation the laptop still gets answers: %+v", r)
		}
	}
}
