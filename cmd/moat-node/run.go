package main

import (
	"net"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/mcpstdio"
)

// runCommand is `join` (enroll with a key, then serve) or `run`.
func runCommand(join bool) *cobra.Command {
	s := new(nodeSettings)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Serve as a node (joining first with --key if it has not joined yet)",
	}
	if join {
		cmd.Use, cmd.Short = "join", "Join the mesh with an enrollment key, then serve"
	}
	cmd.Long = cmd.Short + `.

Every setting is a flag, a MOAT_<FLAG> environment variable or a line of
the --config file, in that order of precedence; see docs/configuration.md.`
	cmd.Flags().AddFlagSet(s.flagSet())
	cli.ConfigFile(cmd, configSchema())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if join {
			if err := cli.Required(cmd, "key"); err != nil {
				return err
			}
		}
		cfg, err := s.config(cmd)
		if err != nil {
			return err
		}
		cfg.JoinOnce = !join // run --key: the key only until the node has joined
		return run(cmd, cfg, s.metricsListen)
	}
	return cmd
}

func run(cmd *cobra.Command, cfg node.Config, metricsListen string) error {
	local, err := listenMetrics(cmd, metricsListen)
	if err != nil {
		return err
	}
	protectMemory(cfg)
	n, err := node.Start(cmd.Context(), cfg)
	if err != nil {
		if local != nil {
			local.Close()
		}
		return err
	}
	defer n.Close()
	if local != nil {
		go n.ServeLocal(local) // ends when n closes
	}
	return n.Run(cmd.Context())
}

// protectMemory applies MemoryDenyWriteExecute to the node itself, not
// to the stdio MCP servers it starts (whose JITs, as Node.js's, need
// it off); the shipped unit leaves it to the node for that reason.
func protectMemory(cfg node.Config) {
	_, inherited, err := mcpstdio.ProtectSelf()
	switch {
	case err != nil:
		cfg.Logger.Warn("MemoryDenyWriteExecute not applied to the node", "err", err)
	case inherited && len(cfg.MCPStdio) > 0:
		cfg.Logger.Error("the node runs under an inherited MemoryDenyWriteExecute (MemoryDenyWriteExecute=yes in its unit): stdio MCP servers with a JIT, such as Node.js ones, will crash; remove it from the unit, moat-node applies it to itself")
	}
}

// listenMetrics listens on --metrics-listen; nil when it is empty.
func listenMetrics(cmd *cobra.Command, addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, cli.Invalid(cmd, "metrics-listen", "%v", err)
	}
	return ln, nil
}
