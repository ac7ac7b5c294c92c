package main

import (
	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/node"
)

// runCommand is `join` (enroll with a key, then serve) or `run`.
func runCommand(join bool) *cobra.Command {
	s := new(nodeSettings)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Serve as a node that has joined before",
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
		return run(cmd, cfg)
	}
	return cmd
}

func run(cmd *cobra.Command, cfg node.Config) error {
	n, err := node.Start(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	return n.Run(cmd.Context())
}
