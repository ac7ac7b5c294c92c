package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/internal/cli"
)

// relayFlags are the serve flags a relay process takes, with serve's
// meaning and defaults; serve's flag code defines them.
var relayFlags = []string{
	"listen", "public-url", "data-dir", "database", "database-file", "seal-key-file", "seal-key",
	"tls", "tls-cert", "tls-key", "shutdown-timeout", "trusted-proxies", "max-conns-per-client",
	"relay-mesh-url", "metrics-listen", "log-level", "log-format",
}

// relayFlagSet is relayFlags from serve's flag set over s, and
// --relay-url.
func relayFlagSet(s *serveSettings) *pflag.FlagSet {
	all := s.flagSet()
	fs := pflag.NewFlagSet("relay", pflag.ContinueOnError)
	for _, name := range relayFlags {
		fs.AddFlag(all.Lookup(name))
	}
	fs.AddFlagSet(relayOwnFlags(s))
	s.stunListen = "" // members ask the coordinator's host for STUN
	return fs
}

// relayOwnFlags are the relay's flags that serve lacks.
func relayOwnFlags(s *serveSettings) *pflag.FlagSet {
	fs := pflag.NewFlagSet("relay-own", pflag.ContinueOnError)
	fs.StringVar(&s.relayURL, "relay-url", "", "where members reach this relay, https://HOST[:PORT]/derp: what the coordinator's --relay names (required)")
	cli.Settings(fs) // serve's flags are settings already
	return fs
}

// relaySchema is every key a relay process's config file may hold:
// serve's, so that replicas and relay processes may share one file
// (keys the relay lacks are skipped), and --relay-url.
func relaySchema() *pflag.FlagSet {
	fs := configSchema()
	fs.AddFlagSet(relayOwnFlags(new(serveSettings)))
	return fs
}

func relayCommand() *cobra.Command {
	s := new(serveSettings)
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Run only the relay, as a process of its own (for scale or regions)",
		Long: `Run only the relay over HTTPS (DERP, at /derp), with /healthz and /readyz,
on its own listener, for a relay on another host than the coordinator: in
another region, or to take the relayed traffic off the replicas. The
coordinator names it with serve --relay, and members use it before the
coordinator's own relay.

A relay process shares the cluster's PostgreSQL database and seal key:
it admits exactly the members the coordinator admits, cuts off the ones
no longer live as the replicas do, and meshes with every replica's relay
(and they with it), so that a member on it reaches members on the
replicas. --public-url is the coordinator's public URL, as given to
serve; --relay-url is this relay's. With --tls self-signed it serves the
cluster's self-signed certificate, which members pin; see docs/reach.md.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := s.checkRelay(cmd); err != nil {
				return err
			}
			cfg := s.config(cmd)
			cfg.RelayOnly, cfg.Relays = true, nil
			if err := s.store.sealKey.apply(cmd, &cfg); err != nil {
				return err
			}
			return serve(cmd.Context(), s, cfg, cmd.OutOrStdout())
		},
	}
	cmd.Flags().AddFlagSet(relayFlagSet(s))
	cli.ConfigFile(cmd, relaySchema())
	return cmd
}

// checkRelay refuses settings a relay process cannot use.
func (s *serveSettings) checkRelay(cmd *cobra.Command) error {
	if err := cli.Required(cmd, "public-url", "relay-url", "data-dir"); err != nil {
		return err
	}
	if err := checkPublicURL(cmd, s.publicURL); err != nil {
		return err
	}
	if err := coordinator.CheckRelayURL(s.relayURL); err != nil {
		return cli.Invalid(cmd, "relay-url", "%v", err)
	}
	if s.store.database == "" {
		return cli.Usagef("a relay process shares the cluster's database: give it the replicas' postgres:// --database (with SQLite the coordinator is one process, and serves the relay itself)")
	}
	if s.shutdownTimeout <= 0 {
		return cli.Invalid(cmd, "shutdown-timeout", "must be longer than 0, not %s", s.shutdownTimeout)
	}
	if s.maxConnsPerClient == 0 || s.maxConnsPerClient < -1 {
		return cli.Invalid(cmd, "max-conns-per-client", "want a number above 0, or -1 for no cap, not %d", s.maxConnsPerClient)
	}
	if err := s.checkTLS(cmd); err != nil {
		return err
	}
	return checkRelayMeshURL(cmd, s.relayMesh)
}
