package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// SignInDevice signs a new device called hostname in as p through the
// browser flow and leaves its key and login in a fresh state directory,
// as `moat login` does. The login names coordinator (and its certificate's fingerprint,
// if any): the URL the device will use, which may differ from the one
// the test signs in through.
func SignInDevice(t testing.TB, ctx context.Context, coord *coordtest.Coord, p *coordtest.Person, hostname, coordinator, fingerprint string) client.Dir {
	t.Helper()
	dir := client.Dir(filepath.Join(t.TempDir(), "device"))
	priv, err := dir.DeviceKey(true)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := control.New(control.Config{URL: coord.URL})
	start, err := c.StartLogin(ctx, wire.LoginRequest{Key: priv.Public(), Hostname: hostname, OS: "linux"})
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
	l := &client.Login{Coordinator: coordinator, Fingerprint: fingerprint, Credential: res.Credential,
		DeviceID: res.DeviceID, Addresses: res.Addresses, Expiry: res.Expiry, SignedIn: time.Now()}
	if err := dir.SaveLogin(l); err != nil {
		t.Fatal(err)
	}
	return dir
}

// StartClient runs the employee client with cfg until the test ends. The
// local endpoint listens on a free loopback port unless cfg says
// otherwise.
func StartClient(t testing.TB, cfg client.Config) *client.Client {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatalf("start the client: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(context.Background())
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
	return c
}

// WaitNetMap waits up to timeout for the client's netmap to satisfy ok
// and returns it; nil when it never did.
func WaitNetMap(c *client.Client, timeout time.Duration, ok func(*wire.NetMap) bool) *wire.NetMap {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(timeout)
	for {
		if nm := c.NetMap(); nm != nil && ok(nm) {
			return nm
		}
		select {
		case <-tick.C:
		case <-deadline:
			return nil
		}
	}
}
