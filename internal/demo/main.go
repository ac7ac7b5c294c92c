// Command demo brings the whole of moat up on this machine, without root,
// for a first look (`make demo`): a coordinator with its embedded identity
// provider and SQLite under ./demo, a GPU node on the userspace network
// stack serving a model (a local Ollama or OpenAI-compatible server when
// one is running, else the clearly labelled built-in stand-in), and an
// employee's device signed in as a demo user with its local
// OpenAI-compatible endpoint. It prints what to try, and Ctrl-C stops it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node"
)

type flags struct {
	dir          string
	coordAddr    string
	endpoint     string
	wgPort       uint
	standinDelay time.Duration
}

func main() {
	var f flags
	flag.StringVar(&f.dir, "dir", "./demo", "where the demo keeps its state (deleted and made fresh on each start)")
	flag.StringVar(&f.coordAddr, "coordinator", "127.0.0.1:8080", "coordinator address")
	flag.StringVar(&f.endpoint, "endpoint", "127.0.0.1:4000", "the employee's local OpenAI-compatible endpoint")
	flag.UintVar(&f.wgPort, "wg-port", 41641, "the node's WireGuard UDP port")
	flag.DurationVar(&f.standinDelay, "standin-delay", 60*time.Millisecond, "pause between the stand-in model's words")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, f); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// logger writes warnings and errors only, so the printed hints stay
// readable.
var logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))

func run(ctx context.Context, f flags) error {
	if err := os.RemoveAll(f.dir); err != nil {
		return err
	}
	url := "http://" + f.coordAddr
	coord, closeCoord, err := startCoordinator(ctx, url, filepath.Join(f.dir, "coordinator"))
	if err != nil {
		return err
	}
	defer closeCoord()
	step("coordinator with its embedded identity provider at %s (SQLite in %s)", url, f.dir)

	adm, err := newAdmin(ctx, coord, url)
	if err != nil {
		return err
	}
	model, closeModel, err := pickModel(f.standinDelay)
	if err != nil {
		return err
	}
	defer closeModel()
	if err := adm.put("/policy", demoPolicy(model.name)); err != nil {
		return err
	}
	step("policy: demo@example.com may use %q; %q exists but is granted to nobody", model.name, refusedModel)

	n, err := startNode(ctx, adm, url, filepath.Join(f.dir, "node"), model, uint16(f.wgPort))
	if err != nil {
		return err
	}
	defer n.Close()
	go n.Run(ctx)
	step("GPU node %s joined with an enrollment key; it serves %q from %s", n.DeviceID(), model.name, model.label)

	person, err := newDemoUser(ctx, coord, url)
	if err != nil {
		return err
	}
	step("demo user demo@example.com (password %q, TOTP secret %s)", person.password, person.totp)

	dev, err := startDevice(ctx, person, url, filepath.Join(f.dir, "device"), f.endpoint)
	if err != nil {
		return err
	}
	defer dev.Close()
	if err := waitFor(ctx, dev, model.name); err != nil {
		return err
	}
	step("demo@example.com's device is signed in; its local endpoint is http://%s", f.endpoint)
	hints(f.endpoint, url, model.name, adm.token)
	<-ctx.Done()
	fmt.Println("\nstopping…")
	return nil
}

func step(format string, args ...any) { fmt.Printf("  ✓ "+format+"\n", args...) }

func hints(endpoint, url, model, token string) {
	fmt.Printf(`
moat is up. Three things to try:

1. Ask the model through the mesh (streamed, as any OpenAI client would):

   curl -N http://%[1]s/v1/chat/completions -H 'Content-Type: application/json' \
     -d '{"model":"%[3]s","stream":true,"messages":[{"role":"user","content":"Hello"}]}'

2. Ask for a model the policy does not grant you — refused:

   curl http://%[1]s/v1/chat/completions -H 'Content-Type: application/json' \
     -d '{"model":"%[4]s","messages":[{"role":"user","content":"Hello"}]}'

3. See the audit record of that request in the admin web UI: open

   %[2]s/ui/audit

   and sign in as demo@example.com with the password and a code from the
   TOTP secret above (add it to an authenticator app, or run
   oathtool --totp -b SECRET). Your request is the newest record; the
   other pages manage the policy, people, devices and nodes. The same
   records from the admin API:

   curl -H 'Authorization: Bearer %[5]s' '%[2]s/api/v1/admin/audit?limit=5'

Ctrl-C stops everything.
`, endpoint, url, model, refusedModel, token)
}

// startCoordinator serves a coordinator on url's address.
func startCoordinator(ctx context.Context, url, dir string) (*coordinator.Server, func(), error) {
	addr := url[len("http://"):]
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s (is another demo running? use --coordinator): %w", addr, err)
	}
	s, err := coordinator.New(ctx, coordinator.Config{PublicURL: url, DataDir: dir, Logger: logger})
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return s, func() { srv.Close(); s.Close() }, nil
}

// startNode enrolls and starts the demo's GPU node.
func startNode(ctx context.Context, adm *admin, url, dir string, m modelSource, port uint16) (*node.Node, error) {
	key, err := adm.enrollKey()
	if err != nil {
		return nil, err
	}
	netstack := engine.Netstack
	return node.Start(ctx, node.Config{
		Coordinator: url, EnrollKey: wire.Secret(key), StateDir: dir, Hostname: "demo-gpu",
		Models: []node.Model{m.model()}, Backend: &netstack, ListenPort: port,
		Endpoints: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)},
		Logger:    logger,
	})
}

// startDevice signs the demo user's device in (its key and login under
// dir, as `moat login` leaves them) and runs the employee client on it,
// with its local endpoint on endpoint.
func startDevice(ctx context.Context, p *demoPerson, url, dir, endpoint string) (*client.Client, error) {
	if err := p.signIn(ctx, url, "demo-laptop", client.Dir(dir)); err != nil {
		return nil, err
	}
	c, err := client.New(client.Config{StateDir: dir, Listen: endpoint, Logger: logger,
		Notify: func(msg string) { logger.Info("demo device: " + msg) }})
	if err != nil {
		return nil, err
	}
	go c.Run(ctx) // Close stops it and waits for it
	return c, nil
}

// waitFor waits until the device's netmap offers model.
func waitFor(ctx context.Context, c *client.Client, model string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(30 * time.Second)
	for {
		if slices.Contains(c.Status().Models, model) {
			return nil
		}
		select {
		case <-tick.C:
		case <-timeout:
			return fmt.Errorf("the device never saw a node serving %q", model)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
