package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/moatmesh/moat/coordinator"
)

// serveFlags are the flags of `serve` and of the commands that open the
// coordinator's state (users, tokens). Every flag can also be set through
// the environment as MOAT_<FLAG> (dashes as underscores).
type serveFlags struct {
	fs                                   *flag.FlagSet
	listen, publicURL, dataDir, database string
	issuer, clientID, clientSecret       string
	groupsClaim, adminGroups, domains    string
	auditorGroups                        string
	tlsMode, tlsCert, tlsKey, logLevel   string
	releaseDir                           string
	deviceTTL                            time.Duration
}

func newServeFlags(name string, stderr io.Writer) *serveFlags {
	f := &serveFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.listen, "listen", ":8443", "address to listen on")
	f.fs.StringVar(&f.publicURL, "public-url", "", "URL people and devices reach the coordinator at (required)")
	f.fs.StringVar(&f.dataDir, "data-dir", "./moat-data", "directory for the SQLite database, keys and certificates")
	f.fs.StringVar(&f.database, "database", "", "empty for SQLite in the data dir, or a postgres:// URL")
	f.fs.StringVar(&f.issuer, "oidc-issuer", "", "external OIDC issuer; empty runs the embedded provider under /idp")
	f.fs.StringVar(&f.clientID, "oidc-client-id", "", "client ID at the external issuer")
	f.fs.StringVar(&f.clientSecret, "oidc-client-secret", "", "client secret at the external issuer")
	f.fs.StringVar(&f.groupsClaim, "oidc-groups-claim", "groups", "ID token claim with the person's groups")
	f.fs.StringVar(&f.adminGroups, "admin-groups", "", "comma-separated IdP groups whose members are admins")
	f.fs.StringVar(&f.auditorGroups, "auditor-groups", "", "comma-separated IdP groups whose members are auditors (read the policy, audit and admin trail)")
	f.fs.StringVar(&f.domains, "allowed-domains", "", "comma-separated email domains allowed to sign in (empty: any)")
	f.fs.StringVar(&f.tlsMode, "tls", "", `"self-signed" to create and keep a certificate; empty uses --tls-cert/--tls-key, or plain HTTP behind a TLS proxy`)
	f.fs.StringVar(&f.tlsCert, "tls-cert", "", "certificate file (PEM)")
	f.fs.StringVar(&f.tlsKey, "tls-key", "", "key file (PEM)")
	f.fs.StringVar(&f.releaseDir, "release-dir", "", "directory with moat-node-linux-amd64, moat-node-linux-arm64 and SHA256SUMS for /install.sh (make release); empty: the moat-node next to this binary")
	f.fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.fs.DurationVar(&f.deviceTTL, "device-ttl", 12*time.Hour, "how long a person's device stays signed in")
	return f
}

// parse reads args, then fills flags not given from MOAT_* variables.
func (f *serveFlags) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	var err error
	f.fs.VisitAll(func(fl *flag.Flag) {
		env := "MOAT_" + strings.ToUpper(strings.ReplaceAll(fl.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !set[fl.Name] && err == nil {
			if e := fl.Value.Set(v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}

func (f *serveFlags) config(stderr io.Writer) coordinator.Config {
	var level slog.Level
	_ = level.UnmarshalText([]byte(f.logLevel))
	return coordinator.Config{
		PublicURL: f.publicURL, DataDir: f.dataDir, Database: f.database, DeviceTTL: f.deviceTTL, ReleaseDir: f.releaseDir,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
		OIDC: coordinator.OIDCConfig{
			Issuer: f.issuer, ClientID: f.clientID, ClientSecret: f.clientSecret, GroupsClaim: f.groupsClaim,
			AdminGroups: splitList(f.adminGroups), AuditorGroups: splitList(f.auditorGroups), AllowedDomains: splitList(f.domains),
		},
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func serveCmd(args []string, stdout, stderr io.Writer) int {
	f := newServeFlags("serve", stderr)
	if err := f.parse(args); err != nil {
		return 2
	}
	if err := serve(f, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "moat-coordinator:", err)
		return 1
	}
	return 0
}

func serve(f *serveFlags, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := f.config(stderr)
	if err := os.MkdirAll(f.dataDir, 0o700); err != nil {
		return err
	}
	tlsCfg, err := f.tls(stdout)
	if err != nil {
		return err
	}
	if f.tlsMode == "self-signed" {
		cfg.SelfSignedCert = tlsCfg.Certificates[0].Certificate[0] // pinned by /install.sh
	}
	s, err := coordinator.New(ctx, cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{
		Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(stdout, "moat-coordinator listening on %s, public URL %s\n", ln.Addr(), f.publicURL)
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// tls returns the TLS configuration the flags ask for, or nil for plain
// HTTP (behind a TLS-terminating proxy).
func (f *serveFlags) tls(stdout io.Writer) (*tls.Config, error) {
	switch {
	case f.tlsMode == "self-signed":
		cert, fp, err := coordinator.SelfSignedCert(f.dataDir, f.publicURL)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(stdout, "self-signed certificate fingerprint (pin it with --coordinator-fingerprint):\n  %s\n", fp)
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	case f.tlsMode != "":
		return nil, fmt.Errorf("--tls %q: the only mode is self-signed", f.tlsMode)
	case f.tlsCert != "" || f.tlsKey != "":
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("load --tls-cert/--tls-key: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
	}
	return nil, nil
}
