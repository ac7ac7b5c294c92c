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

	blockUDP(t, laptopNS)
	dir := SignInDevice(t, ctx, reps[1], reps[1].AddPerson(t, "alice@example.com", false), "laptop", urls[1], fingerprint)
	login, err := dir.LoadLogin()
	if err != nil {
		t.Fatal(err)
	}
	laptop := startE2EChild(t, laptopNS, tunChildConfig{Role: "reach", Coordinator: urls[1], Fingerprint: fingerprint, Debug: debug,
		DeviceDir: string(dir), Node: ready.Node})
	ask := func(cmd string) reachResult {
		t.Helper()
		var r reachResult
		if err := json.Unmarshal([]byte(laptop.Ask(t, cmd, 40*time.Second)), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}

	r := ask("chat")
	if r.Err != "" || r.Status != http.StatusOK || !r.Chunks || r.Path != engine.PathRelay || !strings.HasPrefix(r.Relay, urls[1]) {
		t.Fatalf("laptop on replica 1's relay, node on replica 0's: %+v; want a whole answer through %s/derp", r, urls[1])
	}
	t.Logf("a streamed answer across the relays of two replicas in %.2fs", r.Seconds)
	if r.Seconds > firstContact.Seconds() {
		t.Errorf("first answer after %.2fs, want at most %v", r.Seconds, firstContact)
	}
	waitAudit(t, reps[0], 1)

	reps[0].Admin(t, "POST", "/devices/"+string(login.DeviceID)+"/revoke", "")
	for deadline := time.Now().Add(30 * time.Second); ; {
		r = ask("chatonce")
		if r.Err != "" || r.Status != http.StatusOK {
			break // cut off: no answer, or refused
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the revocation the laptop still gets answers: %+v", r)
		}
	}
	t.Logf("revoked: %s (status %d)", r.Err, r.Status)
}
