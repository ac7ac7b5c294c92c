package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/skip2/go-qrcode"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/router"
	"github.com/moatmesh/moat/mesh/wire"
)

// The flags of each moat command, and the glue from them to the code
// that does the work.

// coordinatorFlags are login's and wg-config's way to name the
// coordinator; the result is --no-browser.
func coordinatorFlags(cmd *cobra.Command, cfg *loginConfig) *bool {
	cmd.Flags().StringVar(&cfg.coordinator, "coordinator", "", "coordinator URL, e.g. https://moat.example.com (default: the one from the last login)")
	cmd.Flags().StringVar(&cfg.fingerprint, "coordinator-fingerprint", "", "SHA-256 of a self-signed coordinator certificate, in hex")
	return cmd.Flags().Bool("no-browser", false, "only print the sign-in URL; do not open a browser")
}

func loginCommand() *cobra.Command {
	var cfg loginConfig
	var noBrowser *bool
	cmd := stateCommand("login", "Sign this device in (opens a browser; prints a URL and QR code)", func(cmd *cobra.Command, dir client.Dir) error {
		cfg.dir, cfg.openBrowser = dir, !*noBrowser
		return doLogin(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	noBrowser = coordinatorFlags(cmd, &cfg)
	return cmd
}

func upCommand() *cobra.Command {
	var cfg client.Config
	var endpoints []string
	logging, verbose, tun := cli.Logging{Level: slog.LevelWarn}, false, false
	cmd := stateCommand("up", "Connect to the mesh and serve the local OpenAI/Ollama endpoint", func(cmd *cobra.Command, dir client.Dir) error {
		if cfg.GuardPort == 0 {
			return cli.Invalid(cmd, "guard-port", "must be 1..65535")
		}
		if verbose {
			logging.Level = slog.LevelDebug
		}
		cfg.StateDir, cfg.Logger = string(dir), logging.Logger(cmd.ErrOrStderr())
		cfg.Notify = func(msg string) { fmt.Fprintln(cmd.ErrOrStderr(), "moat: "+msg) }
		if err := checkUpFlags(&cfg, tun); err != nil {
			return err
		}
		for _, e := range endpoints {
			ap, err := netip.ParseAddrPort(e)
			if err != nil || ap.Port() == 0 {
				return cli.Invalid(cmd, "endpoint", "want IP:PORT (e.g. 203.0.113.7:41641), not %q", e)
			}
			cfg.Endpoints = append(cfg.Endpoints, ap)
		}
		return runUp(cmd.Context(), cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
	})
	fs := cmd.Flags()
	fs.StringVar(&cfg.Listen, "listen", client.DefaultListen, "address of the local OpenAI/Ollama endpoint (loopback only)")
	fs.BoolVar(&cfg.AllowAnyHost, "listen-insecure-any", false, "allow --listen on a non-loopback address: anyone who reaches it uses your models as you")
	fs.BoolVar(&tun, "tun", false, "use a kernel TUN interface (needs root) instead of the userspace network stack")
	fs.Uint16Var(&cfg.GuardPort, "guard-port", router.DefaultGuardPort, "TCP port of the nodes' guards on their mesh addresses")
	fs.Uint16Var(&cfg.ListenPort, "listen-port", 0, "WireGuard UDP port (0: any free port); fix it for a port forward named with --endpoint")
	fs.StringArrayVar(&endpoints, "endpoint", nil, "an extra `IP:PORT` nodes may reach this device's WireGuard port at (a port forward), reported before the interface addresses; repeat for more")
	settings := pflag.NewFlagSet("up", pflag.ContinueOnError)
	logging.Flags(settings)
	cli.Settings(settings)
	fs.AddFlagSet(settings)
	fs.BoolVarP(&verbose, "verbose", "v", false, "short for --log-level debug")
	return cmd
}

func statusCommand() *cobra.Command {
	var asJSON bool
	cmd := stateCommand("status", "Who you are, this device, connected nodes, your models and what remains of your limits and budgets; exit 3 when moat up is not running", func(cmd *cobra.Command, dir client.Dir) error {
		st, up, err := loadStatus(cmd.Context(), dir)
		if err != nil {
			return err
		}
		use, useErr := fetchUsage(cmd.Context(), dir)
		if asJSON {
			err = cli.PrintJSON(cmd.OutOrStdout(), struct {
				*client.Status
				Usage *wire.Usage `json:"usage,omitempty"`
			}{st, use})
		} else {
			printStatus(cmd.OutOrStdout(), st, time.Now())
			printUsage(cmd.OutOrStdout(), use, useErr)
		}
		if err == nil && !up {
			return cli.Exit(cli.ExitNo)
		}
		return err
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	return cmd
}

func modelsCommand() *cobra.Command {
	var asJSON bool
	cmd := stateCommand("models", "List the models you may use; exit 3 when moat up is not running", func(cmd *cobra.Command, dir client.Dir) error {
		st, err := client.FetchStatus(cmd.Context(), dir)
		if errors.Is(err, client.ErrNotUp) {
			return &cli.ExitError{Code: cli.ExitNo, Err: fmt.Errorf("%w; the models you may use come from the mesh", err)}
		}
		if err != nil {
			return err
		}
		if asJSON {
			return cli.PrintJSON(cmd.OutOrStdout(), append([]string{}, st.Models...))
		}
		for _, m := range st.Models {
			fmt.Fprintln(cmd.OutOrStdout(), m)
		}
		return nil
	})
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	return cmd
}

func downCommand() *cobra.Command {
	return stateCommand("down", "Stop a running `moat up`", func(cmd *cobra.Command, dir client.Dir) error {
		if err := client.Down(cmd.Context(), dir); err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), "moat up stopped")
		return nil
	})
}

// tokenCommand: moat token — the local API key that programs pass to
// the local endpoint (OPENAI_API_KEY, an Authorization or x-api-key
// header). Programs running as the same user on Linux need none.
func tokenCommand() *cobra.Command {
	return stateCommand("token", "Print the API key programs pass to the local endpoint (made on first use)", func(cmd *cobra.Command, dir client.Dir) error {
		tok, err := dir.Token(true)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), tok)
		return nil
	})
}

func logoutCommand() *cobra.Command {
	return stateCommand("logout", "Revoke this device's credential and forget it", func(cmd *cobra.Command, dir client.Dir) error {
		return doLogout(cmd.Context(), dir, cmd.OutOrStdout())
	})
}

// wgConfigCommand: moat wg-config — a wg-quick configuration for the
// official WireGuard apps, for devices where moat cannot run. It makes a
// fresh key pair, signs it in as a device of its own (recorded by the
// coordinator, expiring like any device), and prints the configuration
// (and a QR code for phone apps). The configuration is a snapshot: make a
// new one when it expires or the nodes change.
func wgConfigCommand() *cobra.Command {
	var (
		cfg       loginConfig
		name      string
		qr        bool
		noBrowser *bool
	)
	cmd := stateCommand("wg-config", "A wg-quick configuration (and QR code) for the official WireGuard apps", func(cmd *cobra.Command, dir client.Dir) error {
		cfg.dir, cfg.openBrowser = dir, !*noBrowser
		conf, err := wgConfig(cmd.Context(), cfg, name, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		fmt.Fprint(cmd.OutOrStdout(), conf)
		if qr {
			if q, err := qrcode.New(conf, qrcode.Low); err == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "\n%s\n", q.ToSmallString(false))
			}
		}
		return nil
	})
	noBrowser = coordinatorFlags(cmd, &cfg)
	cmd.Flags().StringVar(&name, "name", "wireguard-app", "the device name shown to admins")
	cmd.Flags().BoolVar(&qr, "qr", false, "also print the configuration as a QR code (on stderr) for a phone's WireGuard app")
	return cmd
}
