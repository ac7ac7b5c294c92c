package main

import (
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/tailnet"
	"github.com/moatmesh/moat/policy"
)

// tailnetSettings are the settings of `moat-node tailnet`.
type tailnetSettings struct {
	controlURL, authKey, hostname, state, policyFile, capName string
	coordinator, fingerprint, enrollKey                       string
	tags                                                      []string
	guardPort, listenPort                                     uint16
	lockdown                                                  lockdownSettings
	integrity, shutdownTimeout                                time.Duration
	models                                                    modelFlags
	metricsListen                                             string
	log                                                       cli.Logging
}

func (s *tailnetSettings) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("tailnet", pflag.ContinueOnError)
	fs.StringVar(&s.controlURL, "control-url", "", "the tailnet's control server: a Headscale URL (https://…); empty: Tailscale's")
	fs.StringVar(&s.authKey, "authkey", "", "a Tailscale or Headscale pre-auth key, best tagged (tag:gpu); needed until the node has joined")
	cli.SecretFile(fs, "authkey")
	fs.StringVar(&s.hostname, "hostname", "", "the node's name on the tailnet (callers use http://NAME/v1/…)")
	fs.StringSliceVar(&s.tags, "advertise-tags", nil, "tags the node asks the tailnet for, e.g. tag:gpu (the policy's servedBy must name one); default: those of the auth key")
	fs.StringVar(&s.policyFile, "policy", "", "the moat policy file (HuJSON) this node enforces; checked, tests included, at start")
	fs.StringVar(&s.coordinator, "coordinator", "", "enroll at this moat coordinator (https://…) instead of --policy: it gives the node its rules and maps tailnet callers to its people (when it runs with --tailnet-logins), and receives the audit")
	fs.StringVar(&s.fingerprint, "coordinator-fingerprint", "", "SHA-256 of a self-signed coordinator certificate")
	fs.StringVar(&s.enrollKey, "key", "", "the coordinator's enrollment key moat_ek_… (first join only), whose tags the coordinator's policy serves models by")
	cli.SecretFile(fs, "key")
	fs.StringVar(&s.capName, "capability", tailnet.DefaultCapName, "the tailnet app capability whose {\"groups\": [...]} values name a caller's groups (idp:NAME in the policy)")
	fs.StringVar(&s.state, "state-dir", defaultStateDir, "directory for the tailnet state, the audit spool and counters")
	fs.Uint16Var(&s.guardPort, "guard-port", 80, "the guard's port on the tailnet addresses")
	fs.Uint16Var(&s.listenPort, "listen-port", 41641, "the UDP port for WireGuard, direct paths and STUN on the tailnet")
	s.lockdown.addFlags(fs)
	fs.DurationVar(&s.integrity, "integrity-interval", node.DefaultIntegrityInterval, "how often pinned weight files are hashed again")
	fs.DurationVar(&s.shutdownTimeout, "shutdown-timeout", node.DefaultShutdownTimeout, "on SIGTERM or SIGINT, how long requests in flight may take to finish before they are cut")
	fs.Var(&s.models, "model", "a model to serve, `NAME=URL[,OPTION...]` with options kind=openai|ollama, upstream=NAME, sha256=HEX and file=PATH; repeat for more; saved in the state dir for later runs")
	fs.StringVar(&s.metricsListen, "metrics-listen", "", "serve /metrics and /healthz without identity checks on this host:port, e.g. 127.0.0.1:9464; empty: only over the tailnet")
	s.log.Flags(fs)
	cli.Settings(fs)
	return fs
}

func tailnetCommand() *cobra.Command {
	s := new(tailnetSettings)
	cmd := &cobra.Command{
		Use:   "tailnet",
		Short: "Serve models on an existing Tailscale or Headscale tailnet, the guard enforcing a local moat policy or a coordinator's",
		Long: `Serve models on an existing Tailscale or Headscale tailnet, the guard
enforcing a local moat policy (--policy) or a coordinator's (--coordinator).

The node joins the tailnet as a tsnet node (no tailscaled needed) and the
guard listens on its tailnet addresses. Each caller is who the tailnet's
WhoIs says: a login name is a person, a tagged node is its tags, and the
moat app capability (--capability) may add groups. Headers never count.
The audit spool stays on the node (moat-node audit verify).

With --coordinator (and --key on first join) the node enrolls at a moat
coordinator instead: a tailnet caller whose login name is the email of a
person there is that person, with their IdP groups; a tagged tailnet
device counts only as the tags the coordinator maps (--tailnet-tags);
anyone else is refused. Policy changes apply at once, and the audit is
shipped to the coordinator.

Grants that demand MFA are refused: a tailnet cannot prove it. Log upload to
Tailscale's log service is off. The lockdown (--lockdown host, the
default) lets the host reach the control server, the tailnet's relays
and STUN servers and its peers' endpoints, and nothing else. See
docs/tailnet.md.

Every setting is a flag, a MOAT_<FLAG> environment variable or a line of
the --config file, in that order of precedence.`,
	}
	cmd.Flags().AddFlagSet(s.flagSet())
	cli.ConfigFile(cmd, new(tailnetSettings).flagSet())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := cli.Required(cmd, "hostname"); err != nil {
			return err
		}
		if s.coordinator == "" {
			if s.enrollKey != "" {
				return cli.Invalid(cmd, "key", "an enrollment key is for a coordinator; give --coordinator URL too")
			}
			if err := cli.Required(cmd, "policy"); err != nil {
				return err
			}
		} else if s.policyFile != "" {
			return cli.Invalid(cmd, "policy", "a node enrolled at a coordinator (--coordinator) takes its policy from there; drop --policy")
		}
		cfg, err := s.config(cmd)
		if err != nil {
			return err
		}
		return runTailnet(cmd, cfg, s.metricsListen)
	}
	return cmd
}

// config builds the tailnet node's configuration.
func (s *tailnetSettings) config(cmd *cobra.Command) (tailnet.Config, error) {
	cfg := tailnet.Config{ControlURL: s.controlURL, AuthKey: wire.Secret(s.authKey), AdvertiseTags: s.tags, Hostname: s.hostname,
		StateDir: s.state, GuardPort: s.guardPort, ListenPort: s.listenPort, CapName: s.capName, IntegrityInterval: s.integrity, ShutdownTimeout: s.shutdownTimeout,
		Logger: s.log.Logger(cmd.ErrOrStderr()), Collectors: []prometheus.Collector{cli.BuildInfoCollector()}}
	if s.integrity <= 0 {
		return cfg, cli.Invalid(cmd, "integrity-interval", "must be longer than 0, not %s", s.integrity)
	}
	if s.shutdownTimeout <= 0 {
		return cfg, cli.Invalid(cmd, "shutdown-timeout", "must be longer than 0, not %s", s.shutdownTimeout)
	}
	for _, t := range s.tags {
		if !strings.HasPrefix(t, "tag:") {
			return cfg, cli.Invalid(cmd, "advertise-tags", "%q: tags start with tag:", t)
		}
	}
	var err error
	if cfg.Lockdown, err = s.lockdown.config(cmd); err != nil {
		return cfg, err
	}
	if s.coordinator != "" {
		cfg.Coordinator = &node.CoordinatorConfig{URL: s.coordinator, Fingerprint: s.fingerprint, EnrollKey: wire.Secret(s.enrollKey)}
	} else if cfg.Policy, err = s.loadPolicy(cmd); err != nil {
		return cfg, err
	}
	cfg.Models, err = (&nodeSettings{state: s.state, models: s.models}).loadModels(false)
	return cfg, err
}

// loadPolicy reads and checks the --policy file, tests included.
func (s *tailnetSettings) loadPolicy(cmd *cobra.Command) (*policy.Policy, error) {
	src, err := os.ReadFile(s.policyFile)
	if err != nil {
		return nil, cli.Invalid(cmd, "policy", "%v", err)
	}
	return policy.Check(s.policyFile, src)
}

func runTailnet(cmd *cobra.Command, cfg tailnet.Config, metricsListen string) error {
	local, err := listenMetrics(cmd, metricsListen)
	if err != nil {
		return err
	}
	n, err := tailnet.Start(cmd.Context(), cfg)
	if err != nil {
		if local != nil {
			local.Close()
		}
		return err
	}
	defer n.Close()
	if local != nil {
		go n.Guard().ServeLocal(local) // ends when the guard closes
	}
	return n.Run(cmd.Context())
}
