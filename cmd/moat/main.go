// Command moat is the employee client: login, up, status, models, and a local OpenAI-compatible endpoint.
//
// Configuration is parsed here and nowhere else, then passed down as typed
// structs. State lives in the user's config directory (moat/), or in
// --state-dir or $MOAT_STATE_DIR; every file there is 0600 in a 0700
// directory, and the device's private key never leaves it.
package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/mesh/client"
)

func main() { cli.Main(newRoot()) }

// newRoot builds the command tree; each call returns a fresh one.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "moat",
		Short: "Use your organisation's private models over the moat mesh",
	}
	root.AddCommand(loginCommand(), upCommand(), statusCommand(), modelsCommand(), downCommand(),
		logoutCommand(), tokenCommand(), mcpCommand(), wgConfigCommand())
	return root
}

// stateCommand returns a command with the shared --state-dir setting;
// run receives the resolved state directory.
func stateCommand(use, short string, run func(cmd *cobra.Command, dir client.Dir) error) *cobra.Command {
	var dirFlag string
	cmd := &cobra.Command{Use: use, Short: short}
	fs := pflag.NewFlagSet(use, pflag.ContinueOnError)
	fs.StringVar(&dirFlag, "state-dir", "", "where moat keeps its key and credential (default: the user config dir /moat)")
	cli.Settings(fs)
	cmd.Flags().AddFlagSet(fs)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		dir, err := resolveStateDir(dirFlag)
		if err != nil {
			return err
		}
		return run(cmd, dir)
	}
	return cmd
}
