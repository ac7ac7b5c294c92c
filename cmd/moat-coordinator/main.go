// Command moat-coordinator runs moat's control plane: sign-in, device and
// node identities, the policy, netmap streaming, audit and the admin UI.
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
	os.Exit(cli.Main("moat-coordinator", commands, os.Args[1:], os.Stdout, os.Stderr))
}

var commands = []cli.Command{
	{Name: "serve", Summary: "run the coordinator", Run: serveCmd},
	{Name: "users", Summary: "manage the embedded provider's users (users add [--admin] EMAIL)", Run: usersCmd},
	{Name: "tokens", Summary: "make admin API tokens (tokens create NAME)", Run: tokensCmd},
	{Name: "policy", Summary: "check or explain a policy file", Run: policyCmd},
	{Name: "version", Summary: "print the version", Run: func(_ []string, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, cli.Version())
		return 0
	}},
}
