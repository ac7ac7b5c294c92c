package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/guard"
	"github.com/moatmesh/moat/node/lockdown"
)

// modelFlags collects repeated --model NAME=URL[,kind=openai|ollama][,upstream=NAME][,sha256=HEX][,file=PATH].
type modelFlags []node.Model

func (m *modelFlags) String() string { return fmt.Sprint(len(*m), " models") }

func (m *modelFlags) Set(v string) error {
	name, rest, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("--model %q: want NAME=http://127.0.0.1:PORT[,kind=openai|ollama][,upstream=NAME][,sha256=HEX,file=PATH]", v)
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
			return fmt.Errorf("--model %s: unknown option %q (want kind, upstream, sha256 or file)", name, k)
		}
	}
	*m = append(*m, md)
	return nil
}

type nodeFlags struct {
	fs                                   *flag.FlagSet
	coordinator, fingerprint, key, state string
	hostname, lockdownScope, logLevel    string
	listenPort, guardPort                uint
	netstack                             bool
	integrity                            time.Duration
	models                               modelFlags
}

func newNodeFlags(name string, stderr io.Writer) *nodeFlags {
	f := &nodeFlags{fs: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.StringVar(&f.coordinator, "coordinator", "", "coordinator URL (https://…)")
	f.fs.StringVar(&f.fingerprint, "coordinator-fingerprint", "", "SHA-256 of a self-signed coordinator certificate")
	f.fs.StringVar(&f.key, "key", "", "enrollment key moat_ek_… (first join only)")
	f.fs.StringVar(&f.state, "state-dir", "/var/lib/moat-node", "directory for the node's key, credential and audit spool")
	f.fs.StringVar(&f.hostname, "hostname", "", "name shown to admins (default: the host name)")
	f.fs.StringVar(&f.lockdownScope, "lockdown", "off", "nftables lockdown: off, host or service (root only)")
	f.fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	f.fs.UintVar(&f.listenPort, "listen-port", 41641, "WireGuard UDP port")
	f.fs.UintVar(&f.guardPort, "guard-port", 80, "the guard's port on the mesh addresses")
	f.fs.BoolVar(&f.netstack, "netstack", false, "use the userspace network stack even as root")
	f.fs.DurationVar(&f.integrity, "integrity-interval", node.DefaultIntegrityInterval, "how often pinned weight files are hashed again")
	f.fs.Var(&f.models, "model", "a model to serve: NAME=http://127.0.0.1:PORT[,kind=openai|ollama][,upstream=NAME][,sha256=HEX,file=PATH] (repeatable)")
	return f
}

// config builds the node's configuration; models given on the command
// line are saved to StateDir/models.json so that `run` needs none.
func (f *nodeFlags) config(stderr io.Writer) (node.Config, error) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(f.logLevel))
	cfg := node.Config{
		Coordinator: f.coordinator, Fingerprint: f.fingerprint, EnrollKey: wire.Secret(f.key), StateDir: f.state,
		Hostname: f.hostname, ListenPort: uint16(f.listenPort), GuardPort: uint16(f.guardPort), IntegrityInterval: f.integrity,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
	if f.netstack {
		b := engine.Netstack
		cfg.Backend = &b
	}
	models, err := f.loadModels()
	if err != nil {
		return cfg, err
	}
	cfg.Models = models
	switch f.lockdownScope {
	case "off", "":
	case "host", "service":
		cfg.Lockdown = &lockdown.Config{Scope: lockdown.Scope(f.lockdownScope), WireGuardPort: uint16(f.listenPort), GuardPort: uint16(f.guardPort)}
	default:
		return cfg, fmt.Errorf("--lockdown %q: want off, host or service", f.lockdownScope)
	}
	return cfg, nil
}

func (f *nodeFlags) loadModels() ([]node.Model, error) {
	path := filepath.Join(f.state, "models.json")
	if len(f.models) > 0 {
		if err := os.MkdirAll(f.state, 0o700); err != nil {
			return nil, err
		}
		b, _ := json.MarshalIndent([]node.Model(f.models), "", "  ")
		return f.models, os.WriteFile(path, b, 0o600)
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("no models: give --model NAME=http://127.0.0.1:PORT (saved for later runs)")
	}
	var ms []node.Model
	if err == nil {
		err = json.Unmarshal(b, &ms)
	}
	return ms, err
}

// runCmd implements `join` (enroll, then run) and `run`.
func runCmd(join bool) func(args []string, stdout, stderr io.Writer) int {
	return func(args []string, stdout, stderr io.Writer) int {
		name := map[bool]string{true: "join", false: "run"}[join]
		f := newNodeFlags(name, stderr)
		if err := f.fs.Parse(args); err != nil {
			return 2
		}
		if join && f.key == "" {
			fmt.Fprintln(stderr, "moat-node join: --key moat_ek_… is required (ask an admin for an enrollment key)")
			return 2
		}
		cfg, err := f.config(stderr)
		if err != nil {
			fmt.Fprintln(stderr, "moat-node:", err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		n, err := node.Start(ctx, cfg)
		if err != nil {
			fmt.Fprintln(stderr, "moat-node:", err)
			return 1
		}
		defer n.Close()
		fmt.Fprintf(stdout, "moat-node %s is in the mesh; serving %d model(s)\n", n.DeviceID(), len(cfg.Models))
		if err := n.Run(ctx); err != nil {
			fmt.Fprintln(stderr, "moat-node:", err)
			return 1
		}
		return 0
	}
}
