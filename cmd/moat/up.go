package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/router"
	"github.com/moatmesh/moat/mesh/wire"
)

// upConfig is what `moat up` was asked to do.
type upConfig struct {
	dir       stateDir
	listen    string // local endpoint address; loopback unless anyHost
	anyHost   bool   // --listen-insecure-any: serve beyond loopback
	tun       bool
	guardPort uint16
	logger    *slog.Logger
}

// daemon is a running `moat up`.
type daemon struct {
	cfg    upConfig
	eng    *engine.Engine
	rt     *router.Router
	out    io.Writer // messages for the person
	local  string    // the local endpoint's URL
	cancel context.CancelFunc

	mu struct {
		sync.Mutex
		login   *login
		netmap  *wire.NetMap
		problem string // what is wrong right now, for people; "" = connected
	}
}

// runUp runs until ctx ends or `moat down`.
func runUp(ctx context.Context, cfg upConfig, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	priv, err := cfg.dir.deviceKey(false)
	if err != nil {
		return errNoLogin
	}
	l, err := cfg.dir.loadLogin()
	if err != nil {
		return err
	}
	ctl, err := listenControl(cfg.dir)
	if err != nil {
		return err
	}
	defer ctl.Close()
	ln, err := listenLocal(cfg)
	if err != nil {
		return err
	}
	defer ln.Close()
	backend := engine.Netstack
	if cfg.tun {
		if os.Geteuid() != 0 {
			return errors.New("--tun needs root (CAP_NET_ADMIN); without --tun moat runs in userspace and needs no privileges")
		}
		backend = engine.TUN
	}
	eng, err := engine.New(engine.Config{PrivateKey: priv, Backend: backend, Logger: cfg.logger})
	if err != nil {
		return err
	}
	defer eng.Close()
	rt, err := router.New(router.Config{Dialer: eng, GuardPort: cfg.guardPort, AllowAnyHost: cfg.anyHost, Logger: cfg.logger})
	if err != nil {
		return err
	}
	defer rt.Close()
	d := &daemon{cfg: cfg, eng: eng, rt: rt, out: stderr, cancel: cancel, local: "http://" + ln.Addr().String()}
	d.mu.login = l
	d.mu.problem = "connecting to the coordinator"
	fmt.Fprintf(stdout, "moat is up: OpenAI endpoint %s/v1, Ollama endpoint %s (%s network stack)\n", d.local, d.local, backend)
	return d.serve(ctx, ln, ctl)
}

// serve runs the local endpoint, the control socket and the coordinator
// session until ctx ends, then shuts them down and waits for them.
func (d *daemon) serve(ctx context.Context, ln, ctl net.Listener) error {
	api := &http.Server{Handler: d.rt, ReadHeaderTimeout: 10 * time.Second}
	ctlSrv := &http.Server{Handler: d.controlHandler(), ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Go(func() { api.Serve(ln) })
	wg.Go(func() { ctlSrv.Serve(ctl) })
	wg.Go(func() { d.sessions(ctx) })
	<-ctx.Done()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	api.Shutdown(shut)
	ctlSrv.Shutdown(shut)
	wg.Wait()
	fmt.Fprintln(d.out, "moat is down")
	return nil
}

// listenLocal opens the local endpoint, refusing non-loopback addresses
// unless the person insisted.
func listenLocal(cfg upConfig) (net.Listener, error) {
	host, _, err := net.SplitHostPort(cfg.listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: want HOST:PORT", cfg.listen)
	}
	if !cfg.anyHost && !isLoopbackHost(host) {
		return nil, fmt.Errorf("--listen %s is not a loopback address: anyone who reaches it would use your models as you; add --listen-insecure-any if you mean it", cfg.listen)
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return nil, fmt.Errorf("local endpoint: %w", err)
	}
	return ln, nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
