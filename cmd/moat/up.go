package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/engine"
)

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
