package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/guard"
	"github.com/moatmesh/moat/policy"
)

// defaultStateDir is where a node keeps its key, credential and spool.
const defaultStateDir = "/var/lib/moat-node"

// nodeSettings are the settings of `join` and `run`, the keys of the
// node's config file.
type nodeSettings struct {
	coordinator, fingerprint, key, state string
	hostname                             string
	lockdown                             lockdownSettings
	metricsListen, auditRetention        string
	listenPort, guardPort                uint16
	netstack                             bool
	integrity, shutdownTimeout           time.Duration
	models                               modelFlags
	mcp                                  []string
	mcpUser                              string
	endpoints                            []string
	log                                  cli.Logging
}

func (s *nodeSettings) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("node", pflag.ContinueOnError)
	fs.StringVar(&s.coordinator, "coordinator", "", "coordinator URL (https://…)")
	fs.StringVar(&s.fingerprint, "coordinator-fingerprint", "", "SHA-256 of a self-signed coordinator certificate")
	fs.StringVar(&s.key, "key", "", "enrollment key moat_ek_…: join enrolls with it (again, if the node had joined); run uses it only until the node has joined, so it may stay in a service's settings")
	cli.SecretFile(fs, "key")
	fs.StringVar(&s.state, "state-dir", defaultStateDir, "directory for the node's key, credential and audit spool")
	fs.StringVar(&s.hostname, "hostname", "", "name shown to admins (default: the host name)")
	fs.Uint16Var(&s.listenPort, "listen-port", 41641, "WireGuard UDP port")
	fs.Uint16Var(&s.guardPort, "guard-port", 80, "the guard's port on the mesh addresses")
	fs.StringArrayVar(&s.endpoints, "endpoint", nil, "an extra `IP:PORT` peers may reach this node's WireGuard port at (an elastic IP, a port forward), advertised before the interface addresses; repeat for more")
	fs.BoolVar(&s.netstack, "netstack", false, "use the userspace network stack even as root")
	fs.DurationVar(&s.integrity, "integrity-interval", node.DefaultIntegrityInterval, "how often pinned weight files are hashed again")
	fs.DurationVar(&s.shutdownTimeout, "shutdown-timeout", node.DefaultShutdownTimeout, "on SIGTERM or SIGINT, how long requests in flight (streams included) may take to finish before they are cut")
	s.lockdown.addFlags(fs)
	fs.Var(&s.models, "model", "a model to serve, `NAME=URL[,OPTION...]` with options kind=openai|ollama, upstream=NAME, sha256=HEX and file=PATH (its weights file: hashed against sha256, and checked for encryption at rest when the policy requires it); repeat for more; saved in the state dir for later runs")
	fs.StringArrayVar(&s.mcp, "mcp", nil, "an MCP server to serve to the mesh at /mcp/NAME, `NAME=http://127.0.0.1:PORT/PATH` (Streamable HTTP on loopback) or NAME=stdio:/PATH,ARG,… (started by the node, one sandboxed process per session); repeat for more; saved in the state dir for later runs")
	fs.StringVar(&s.mcpUser, "mcp-user", "", "the `USER` stdio MCP servers run as (the node needs CAP_SETUID and CAP_SETGID); empty: the node's own, without its capabilities")
	fs.StringVar(&s.metricsListen, "metrics-listen", "", "serve /metrics and /healthz without identity checks on this host:port, e.g. 127.0.0.1:9464, for a local Prometheus; empty: only over the mesh")
	fs.StringVar(&s.auditRetention, "audit-retention", "", `how long the audit spool keeps a record already delivered to the coordinator when its grant sets no "audit": {"retention"}, e.g. "30d"; older delivered records are deleted hourly under a checkpoint that keeps "audit verify" passing; empty: kept`)
	s.log.Flags(fs)
	cli.Settings(fs)
	return fs
}

// configSchema is every key a node config file may hold.
func configSchema() *pflag.FlagSet { return new(nodeSettings).flagSet() }

// config builds the node's configuration; models given in the settings
// are saved to StateDir/models.json so that `run` needs none.
func (s *nodeSettings) config(cmd *cobra.Command) (node.Config, error) {
	cfg := node.Config{
		Coordinator: s.coordinator, Fingerprint: s.fingerprint, EnrollKey: wire.Secret(s.key), StateDir: s.state,
		Hostname: s.hostname, ListenPort: s.listenPort, GuardPort: s.guardPort, IntegrityInterval: s.integrity,
		Logger: s.log.Logger(cmd.ErrOrStderr()), ShutdownTimeout: s.shutdownTimeout,
		Collectors: []prometheus.Collector{cli.BuildInfoCollector()},
	}
	if s.shutdownTimeout <= 0 {
		return cfg, cli.Invalid(cmd, "shutdown-timeout", "must be longer than 0, not %s", s.shutdownTimeout)
	}
	if s.integrity <= 0 {
		return cfg, cli.Invalid(cmd, "integrity-interval", "must be longer than 0, not %s", s.integrity)
	}
	if s.auditRetention != "" {
		d, err := policy.ParseDuration(s.auditRetention)
		if err != nil || d <= 0 {
			return cfg, cli.Invalid(cmd, "audit-retention", "%q: want a duration such as 30d or 720h", s.auditRetention)
		}
		cfg.AuditRetention = time.Duration(d)
	}
	if s.netstack {
		b := engine.Netstack
		cfg.Backend = &b
	}
	for _, e := range s.endpoints {
		ap, err := netip.ParseAddrPort(e)
		if err != nil || ap.Port() == 0 {
			return cfg, cli.Invalid(cmd, "endpoint", "want IP:PORT (e.g. 203.0.113.7:41641), not %q", e)
		}
		cfg.ExtraEndpoints = append(cfg.ExtraEndpoints, ap)
	}
	var err error
	if cfg.Lockdown, err = s.lockdown.config(cmd); err != nil {
		return cfg, err
	}
	if cfg.MCP, cfg.MCPStdio, err = s.loadMCP(cmd); err != nil {
		return cfg, err
	}
	models, err := s.loadModels(len(cfg.MCP)+len(cfg.MCPStdio) > 0)
	cfg.Models = models
	return cfg, err
}

// loadModels returns the models of the --model flags, saved for later
// runs, or those saved before; none is an error unless mcpOnly.
func (s *nodeSettings) loadModels(mcpOnly bool) ([]node.Model, error) {
	path := filepath.Join(s.state, "models.json")
	if len(s.models) > 0 {
		if err := os.MkdirAll(s.state, 0o700); err != nil {
			return nil, err
		}
		b, _ := json.MarshalIndent([]node.Model(s.models), "", "  ")
		return s.models, os.WriteFile(path, b, 0o600)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && mcpOnly {
		return nil, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, cli.Usagef("no models: give --model NAME=http://127.0.0.1:PORT (saved for later runs)")
	}
	var ms []node.Model
	if err == nil {
		err = json.Unmarshal(b, &ms)
	}
	return ms, err
}

// modelFlags collects repeated --model NAME=URL[,kind=openai|ollama][,upstream=NAME][,sha256=HEX][,file=PATH].
// One value may hold several models separated by spaces (MOAT_MODEL).
type modelFlags []node.Model

func (m *modelFlags) String() string {
	names := make([]string, len(*m))
	for i, md := range *m {
		names[i] = md.Name
	}
	return strings.Join(names, " ")
}

func (*modelFlags) Type() string { return "model" }

func (m *modelFlags) Set(v string) error {
	for _, one := range strings.Fields(v) {
		md, err := parseModel(one)
		if err != nil {
			return err
		}
		*m = append(*m, md)
	}
	return nil
}

// Append, Replace and GetSlice make a model line repeatable in the
// config file (pflag.SliceValue).
func (m *modelFlags) Append(v string) error { return m.Set(v) }

func (m *modelFlags) Replace(vs []string) error {
	*m = nil
	for _, v := range vs {
		if err := m.Set(v); err != nil {
			return err
		}
	}
	return nil
}

func (m *modelFlags) GetSlice() []string { return strings.Fields(m.String()) }

func parseModel(v string) (node.Model, error) {
	name, rest, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return node.Model{}, fmt.Errorf("%q: want NAME=http://127.0.0.1:PORT[,kind=openai|ollama][,upstream=NAME][,sha256=HEX,file=PATH]", v)
	}
	parts := strings.Split(rest, ",")
	md := node.Model{Name: name, Upstream: guard.Upstream{URL: parts[0], Kind: guard.KindOpenAI}}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(p, "=")
		switch k {
		case "kind":
			md.Upstream.Kind = val
		case "upstream":
			md.Upstream.UpstreamModel = val
		case "sha256":
			md.SHA256 = strings.ToLower(val)
		case "file":
			md.File = val
		default:
			return node.Model{}, fmt.Errorf("model %s: unknown option %q (want kind, upstream, sha256 or file)", name, k)
		}
	}
	return md, nil
}
