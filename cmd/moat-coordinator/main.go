// Command moat-coordinator runs moat's control plane: sign-in, device and
// node identities, the policy, netmap streaming, audit and the admin UI.
//
// Configuration is parsed here and nowhere else (flags, MOAT_* variables,
// a --config file; see internal/cli), then passed down as typed structs.
package main

import (
	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/internal/cli"
)

func main() { cli.Main(newRoot()) }

// newRoot builds the command tree; each call returns a fresh one.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "moat-coordinator",
		Short: "moat's control plane: sign-in, device and node identities, policy, netmaps, audit and the admin UI",
	}
	root.AddCommand(serveCommand(), relayCommand(), initCommand(), doctorCommand(), usersCommand(), tokensCommand(), scimTokensCommand(), policyCommand(),
		backupCommand(), restoreCommand(), rotateCommand())
	return root
}
