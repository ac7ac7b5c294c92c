package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/mesh/relay"
)

func serveCommand() *cobra.Command {
	s := new(serveSettings)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the coordinator",
		Long: `Run the coordinator. Every setting is a flag, a MOAT_<FLAG> environment
variable or a line of the --config file, in that order of precedence; see
docs/configuration.md.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := s.check(cmd); err != nil {
				return err
			}
			cfg := s.config(cmd)
			if err := s.store.sealKey.apply(cmd, &cfg); err != nil {
				return err
			}
			return serve(cmd.Context(), s, cfg, cmd.OutOrStdout())
		},
	}
	cmd.Flags().AddFlagSet(s.flagSet())
	cli.ConfigFile(cmd, configSchema())
	return cmd
}

func serve(ctx context.Context, s *serveSettings, cfg coordinator.Config, stdout io.Writer) error {
	if err := os.MkdirAll(s.store.dataDir, 0o700); err != nil {
		return err
	}
	tlsCfg, err := s.tls(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	if tlsCfg != nil {
		expiry, err := coordinator.CertificateExpiry(tlsCfg.Certificates[0])
		if err != nil {
			return fmt.Errorf("TLS certificate: %w", err)
		}
		cfg.Collectors = append(cfg.Collectors, expiry)
	}
	if s.tlsMode == "self-signed" {
		cfg.SelfSignedCert = tlsCfg.Certificates[0].Certificate[0] // pinned by /install.sh
	}
	if cfg.RelayMeshURL, err = s.relayMeshURL(tlsCfg != nil); err != nil {
		cfg.Logger.Warn("the relay does not mesh with the other replicas': members relayed through different replicas cannot reach each other", "err", err)
	}
	c, err := coordinator.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	ln, err := net.Listen("tcp", s.listen)
	if err != nil {
		return err
	}
	ln = c.LimitListener(ln)
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{
		Handler: c, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(c.Drain) // netmap streams never end on their own
	s.logStart(cfg.Logger, c, ln.Addr(), cfg.RelayOnly)
	if s.metricsListen != "" {
		stop, err := serveMetrics(s.metricsListen, c.MetricsHandler(), stdout)
		if err != nil {
			ln.Close()
			return err
		}
		defer stop()
	}
	if s.stunListen != "" {
		if pc, err := net.ListenPacket("udp", s.stunListen); err != nil {
			cfg.Logger.Warn("STUN not served; members behind NAT advertise only their own addresses", "listen", s.stunListen, "err", err)
		} else {
			defer pc.Close()
			go relay.ServeSTUN(pc)
		}
	}
	if cfg.RelayOnly {
		fmt.Fprintf(stdout, "moat-coordinator relay listening on %s, relay URL %s\n", ln.Addr(), s.relayURL)
	} else {
		fmt.Fprintf(stdout, "moat-coordinator listening on %s, public URL %s\n", ln.Addr(), s.publicURL)
	}
	return serveUntil(ctx, srv, ln, c, s.shutdownTimeout, cfg.Logger)
}

// logStart writes the startup line: what runs, on what, where.
func (s *serveSettings) logStart(log *slog.Logger, c *coordinator.Server, addr net.Addr, relayOnly bool) {
	idp, tlsMode := "embedded", "off (behind a TLS proxy)"
	if s.issuer != "" {
		idp = s.issuer
	}
	switch {
	case s.tlsMode != "":
		tlsMode = s.tlsMode
	case s.tlsCert != "":
		tlsMode = "certificate " + s.tlsCert
	}
	if relayOnly {
		log.Info("moat-coordinator relay starting", "version", cli.BuildInfo().Version, "listen", addr.String(),
			"tls", tlsMode, "relay_url", s.relayURL, "public_url", s.publicURL)
		return
	}
	log.Info("moat-coordinator starting", "version", cli.BuildInfo().Version, "database", c.Store().Kind(),
		"idp", idp, "listen", addr.String(), "tls", tlsMode, "public_url", s.publicURL)
}

// serveUntil serves on ln until ctx ends (SIGTERM, SIGINT), then shuts
// down gracefully: it stops accepting, ends netmap streams and lets the
// requests in flight finish for up to timeout (or until a second signal)
// before cutting them.
func serveUntil(ctx context.Context, srv *http.Server, ln net.Listener, c *coordinator.Server, timeout time.Duration, log *slog.Logger) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err // the listener failed
	case <-ctx.Done():
	}
	start := time.Now()
	log.Info("moat-coordinator shutting down", "in_flight", c.InFlight(), "timeout", timeout)
	deadline, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	again, stop := signal.NotifyContext(deadline, os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := srv.Shutdown(again)
	<-served // http.ErrServerClosed, at once
	if err != nil {
		cut := c.InFlight()
		srv.Close()
		log.Warn("moat-coordinator stopped, cutting requests still in flight", "cut", cut, "took", time.Since(start).Round(time.Millisecond))
		return nil
	}
	log.Info("moat-coordinator stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// serveMetrics serves /metrics (h) alone on addr, in plain HTTP, until
// the returned stop is called.
func serveMetrics(addr string, h http.Handler, stdout io.Writer) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	go srv.Serve(ln)
	fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", ln.Addr())
	return func() { srv.Close() }, nil
}

// tls returns the TLS configuration the settings ask for, or nil for
// plain HTTP (behind a TLS-terminating proxy).
func (s *serveSettings) tls(ctx context.Context, cfg coordinator.Config, stdout io.Writer) (*tls.Config, error) {
	switch {
	case s.tlsMode == "self-signed":
		cert, fp, err := coordinator.SelfSignedTLS(ctx, cfg)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stdout, "self-signed certificate fingerprint (pin it with --coordinator-fingerprint):\n  %s\n", fp)
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	case s.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(s.tlsCert, s.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	}
	return nil, nil
}
