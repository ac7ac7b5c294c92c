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

// relayUsage are the relay command's own help texts for serve flags
// that mean something else to a relay process.
var relayUsage = map[string]string{
	"data-dir":       "directory for this process's files and, without --seal-key-file, the cluster's seal key (seal.key, the same as the replicas'); the database is --database, the replicas' PostgreSQL",
	"database":       "the replicas' PostgreSQL, a postgres:// URL (required: a relay process admits members by the replicas' database)",
	"metrics-listen": "serve /metrics without a token on this address, e.g. 127.0.0.1:9090 for a local scraper; a relay process serves /metrics nowhere else (its main address has no API tokens to check)",
	"relay-mesh-url": "where the replicas reach this relay process, e.g. https://10.0.3.7:8443/derp, so that members on it reach members on the replicas; empty: this host's first IPv4 address that is not loopback or link-local at the --listen port, which replicas in another region may not reach (set it there); a relay process must mesh, so \"none\" is refused",
}

// relayFlagSet is relayFlags from serve's flag set over s, and
// --relay-url.
func relayFlagSet(s *serveSettings) *pflag.FlagSet {
	all := s.flagSet()
	fs := pflag.NewFlagSet("relay", pflag.ContinueOnError)
	for _, name := range relayFlags {
		f := all.Lookup(name)
		if usage, ok := relayUsage[name]; ok {
			c := *f // the same value, told as a relay process means it
			c.Usage = usage + " [$" + cli.EnvName(name) + "]"
			f = &c
		}
		fs.AddFlag(f)
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
	cli.ConfigFile(cmd, configSchema())
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
	if s.relayMesh == relayMeshOff {
		return cli.Invalid(cmd, "relay-mesh-url", "%q: a relay process that does not mesh cannot reach members on the replicas; give the address the replicas reach it at, or leave it empty", s.relayMesh)
	}
	return checkRelayMeshURL(cmd, s.relayMesh)
}
