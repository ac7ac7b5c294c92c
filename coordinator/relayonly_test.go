package coordinator_test

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/pgtest"
	"github.com/moatmesh/moat/internal/tcpproxy"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/mesh/wire"
)

// TestRelayOnly: a relay process (Config.RelayOnly) on the replicas'
// PostgreSQL serves the relay and health alone; it admits the members
// the replica admits and refuses other keys, meshes with the replica
// both ways, and cuts off a member revoked at the replica.
func TestRelayOnly(t *testing.T) {
	_, cluster, replica := relayCluster(t, "the relay process test")
	ka, resA := enrollGPU(t, replica, "gpu-a")
	kb, _ := enrollGPU(t, replica, "gpu-b")

	var relayURL string
	_, serve := startUnlistened(t, func(cfg *coordinator.Config) {
		cluster(cfg)
		relayURL = cfg.PublicURL    // its own address
		cfg.PublicURL = replica.URL // the coordinator's, as `relay --public-url`
		cfg.RelayOnly = true
	})
	serve()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/api/v1/netmap": 404, "/ui/": 404, "/idp/.well-known/openid-configuration": 404, "/metrics": 404} {
		resp, err := http.Get(relayURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("relay process GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}

	ra, err := relay.NewClient(relay.ClientConfig{URL: relayURL + relay.Path, PrivateKey: ka})
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	stranger, err := relay.NewClient(relay.ClientConfig{URL: relayURL + relay.Path, PrivateKey: mustKey(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	rb := dialRelay(t, replica, kb)
	waitUntil(t, func() bool { return ra.Connected() && rb.Connected() && stranger.Err() != nil })
	if stranger.Connected() {
		t.Fatal("the relay process admitted a key no device or node has")
	}
	firstArrival(t, ra, rb, kb.Public()) // relay process → replica
	firstArrival(t, rb, ra, ka.Public()) // replica → relay process

	replica.Admin(t, "POST", "/devices/"+string(resA.DeviceID)+"/revoke", "")
	waitUntil(t, func() bool { return !ra.Connected() && ra.Err() != nil })
	if !rb.Connected() {
		t.Fatal("revoking one node cut another off the replica's relay")
	}
}

// A relay process refuses SQLite: it must share the replicas' database.
func TestRelayOnlyRefusesSQLite(t *testing.T) {
	_, err := coordinator.New(t.Context(), coordinator.Config{PublicURL: "https://moat.example.com", DataDir: t.TempDir(), RelayOnly: true})
	if err == nil || !strings.Contains(err.Error(), "shares the cluster's database") {
		t.Fatalf("New(RelayOnly, SQLite) = %v, want a refusal naming the shared database", err)
	}
}

// Config.Relays are named in every netmap, best first, the
// coordinator's own relay last; without them, no relays are named (the
// member uses the coordinator's own).
func TestNetmapNamesRelays(t *testing.T) {
	for _, relays := range [][]string{nil, {"https://relay-eu.example.com/derp", "https://10.0.0.7:8443/derp"}} {
		c := coordtest.Start(t, func(cfg *coordinator.Config) { cfg.Relays = relays })
		c.SavePolicy(t, `{ "tagOwners": { "tag:gpu": [] } }`)
		ctl, _ := c.SignInDevice(t, c.AddPerson(t, "alice@example.com", false), "laptop")
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		var got []string
		err := ctl.Stream(ctx, 0, func(nm *wire.NetMap) error {
			for _, r := range nm.Relays {
				got = append(got, r.URL)
			}
			return errStop
		})
		cancel()
		if !errors.Is(err, errStop) {
			t.Fatal(err)
		}
		want := []string(nil)
		if relays != nil {
			want = append(slices.Clone(relays), c.URL+relay.Path)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Relays %q: the netmap names %q, want %q", relays, got, want)
		}
	}
	bad := []string{"http://relay.example.com/derp", "https://relay.example.com", "https://relay.example.com:0/derp", "https:///derp", "https://u@relay.example.com/derp"}
	for _, r := range bad {
		_, err := coordinator.New(t.Context(), coordinator.Config{PublicURL: "https://moat.example.com", DataDir: t.TempDir(), Relays: []string{r}})
		if err == nil {
			t.Errorf("Relays %q accepted", r)
		}
	}
}

var errStop = errors.New("stop")

// TestRelayOnlyProbeStoreDown: a relay process whose database is cut
// refuses every member (admission fails closed); its probe, which
// members choose relays by, answers 503 then, and 200 while the store
// answers.
func TestRelayOnlyProbeStoreDown(t *testing.T) {
	dsn, cluster, replica := relayCluster(t, "the relay probe test")
	ka, _ := enrollGPU(t, replica, "gpu-a")

	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	proxy := tcpproxy.Start(t, u.Host)
	pu := *u
	pu.Host = proxy.Addr()
	var relayURL string
	_, serve := startUnlistened(t, func(cfg *coordinator.Config) {
		cluster(cfg)
		cfg.Database = pu.String()
		relayURL = cfg.PublicURL
		cfg.PublicURL = replica.URL
		cfg.RelayOnly = true
	})
	serve()
	status := func(method, path string) int {
		t.Helper()
		req, _ := http.NewRequest(method, relayURL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(http.MethodHead, relay.Path+"/probe"); got != http.StatusOK {
		t.Fatalf("store up: HEAD probe %d, want 200", got)
	}
	ra, err := relay.NewClient(relay.ClientConfig{URL: relayURL + relay.Path, PrivateKey: ka})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ra.Connected)
	ra.Close()

	proxy.Cut()
	if got := status(http.MethodGet, "/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("store cut: GET /readyz %d, want 503", got)
	}
	// The probe's answer stands for relayProbeEvery (1 s).
	for deadline := time.Now().Add(5 * time.Second); status(http.MethodHead, relay.Path+"/probe") != http.StatusServiceUnavailable; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("store cut: HEAD probe still not 503 after 5 s")
		}
	}
	rb, err := relay.NewClient(relay.ClientConfig{URL: relayURL + relay.Path, PrivateKey: ka})
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	time.Sleep(2 * time.Second)
	if rb.Connected() {
		t.Error("store cut: a member was admitted; the probe's 503 would then be wrong")
	}
}

// relayCluster starts a replica on a fresh PostgreSQL schema (its DSN is
// returned) with a policy that lets tag:gpu nodes enroll, and returns
// the settings a relay process of the same cluster shares with it.
func relayCluster(t *testing.T, what string) (dsn string, cluster func(*coordinator.Config), replica *coordtest.Coord) {
	t.Helper()
	dsn = pgtest.FreshSchema(t, pgtest.URL(t, what))
	var sealKey [32]byte
	rand.Read(sealKey[:])
	cluster = func(cfg *coordinator.Config) {
		cfg.RelayMeshURL = cfg.PublicURL + relay.Path
		cfg.Database, cfg.DataDir = dsn, t.TempDir()
		cfg.SealKey, cfg.SealKeySource = sealKey, "the test's seal key"
	}
	replica = coordtest.Start(t, cluster)
	replica.SavePolicy(t, `{ "tagOwners": { "tag:gpu": [] } }`)
	return dsn, cluster, replica
}
