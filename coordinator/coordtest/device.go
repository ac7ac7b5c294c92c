package coordtest

import (
	"context"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// SignInDevice signs a new device of p in through the browser flow (so
// that p is a person at the coordinator) and returns its control client,
// holding its credential, and its ID.
func (c *Coord) SignInDevice(t testing.TB, p *Person, hostname string) (*control.Client, wire.DeviceID) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ctl, err := control.New(control.Config{URL: c.URL})
	if err != nil {
		t.Fatal(err)
	}
	priv, _ := key.NewPrivate()
	start, err := ctl.StartLogin(ctx, wire.LoginRequest{Key: priv.Public(), Hostname: hostname, OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SignIn(start.AuthURL, p); err != nil {
		t.Fatal(err)
	}
	res, err := ctl.WaitLogin(ctx, start.Poll)
	if err != nil {
		t.Fatal(err)
	}
	return ctl.WithCredential(res.Credential), res.DeviceID
}
