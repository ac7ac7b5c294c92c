// Command moat-node runs on a GPU host: it joins the mesh, locks the host down and guards the models it serves.
//
// Configuration is parsed here and nowhere else, then passed down as typed
// structs.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/moatmesh/moat/internal/cli"
)

func main() {
	os.Exit(cli.Main("moat-node", commands, os.Args[1:], os.Stdout, os.Stderr))
}

var commands = []cli.Command{
	{Name: "join", Summary: "join the mesh with an enrollment key, then serve", Run: runCmd(true)},
	{Name: "run", Summary: "serve as a node that has joined before", Run: runCmd(false)},
	{Name: "lockdown", Summary: "lockdown status | off", Run: lockdownCmd},
	{Name: "audit", Summary: "audit verify [--state-dir DIR]", Run: auditCmd},
	{Name: "version", Summary: "print the version", Run: func(_ []string, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, cli.Version())
		return 0
	}},
}
