package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/router"
)

func cmdUp(args []string, stdout, stderr io.Writer) int {
	fs, dirFlag := newFlagSet("up", stderr)
	var cfg client.Config
	fs.StringVar(&cfg.Listen, "listen", client.DefaultListen, "address of the local OpenAI/Ollama endpoint (loopback only)")
	fs.BoolVar(&cfg.AllowAnyHost, "listen-insecure-any", false, "allow --listen on a non-loopback address: anyone who reaches it uses your models as you")
	tun := fs.Bool("tun", false, "use a kernel TUN interface (needs root) instead of the userspace network stack")
	port := fs.Uint("guard-port", router.DefaultGuardPort, "TCP port of the nodes' guards on their mesh addresses")
	verbose := fs.Bool("v", false, "log more")
	if fs.Parse(args) != nil {
		return 2
	}
	if *port == 0 || *port > 65535 {
		fmt.Fprintln(stderr, "moat up: --guard-port must be 1..65535")
		return 2
	}
	cfg.GuardPort = uint16(*port)
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Notify = func(msg string) { fmt.Fprintln(stderr, "moat: "+msg) }
	return runWith(stderr, "up", dirFlag, func(ctx context.Context, dir client.Dir) error {
		cfg.StateDir = string(dir)
		if err := checkUpFlags(&cfg, *tun); err != nil {
			return err
		}
		return runUp(ctx, cfg, stdout, stderr)
	})
}

// checkUpFlags refuses what the flags cannot do, in the flags' words.
func checkUpFlags(cfg *client.Config, tun bool) error {
	if err := client.CheckListen(cfg.Listen, cfg.AllowAnyHost); errors.Is(err, client.ErrNotLoopback) {
		return fmt.Errorf("--listen %s is not a loopback address: anyone who reaches it would use your models as you; add --listen-insecure-any if you mean it", cfg.Listen)
	} else if err != nil {
		return fmt.Errorf("--listen %q: want HOST:PORT", cfg.Listen)
	}
	if tun {
		if os.Geteuid() != 0 {
			return errors.New("--tun needs root (CAP_NET_ADMIN); without --tun moat runs in userspace and needs no privileges")
		}
		cfg.Backend = engine.TUN
	}
	return nil
}

// runUp runs the client until ctx ends or `moat down`.
func runUp(ctx context.Context, cfg client.Config, stdout, stderr io.Writer) error {
	c, err := client.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(stdout, "moat is up: OpenAI endpoint %s/v1, Ollama endpoint %s (%s network stack)\n", c.Endpoint(), c.Endpoint(), c.Backend())
	err = c.Run(ctx)
	fmt.Fprintln(stderr, "moat is down")
	return err
}
