// Command moat-node runs on a GPU host: it joins the mesh, locks the host
// down and guards the models it serves.
//
// Configuration is parsed here and nowhere else (flags, MOAT_* variables,
// a --config file; see internal/cli), then passed down as typed structs.
package main

import (
	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/node/mcpstdio"
)

func main() {
	mcpstdio.LaunchMain() // when started to launch a stdio MCP server
	cli.Main(newRoot())
}

// newRoot builds the command tree; each call returns a fresh one.
func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "moat-node",
		Short: "A GPU host in the moat mesh: joins, locks the host down and guards the models it serves",
	}
	root.AddCommand(runCommand(true), runCommand(false), tailnetCommand(), lockdownCommand(), auditCommand())
	return root
}
