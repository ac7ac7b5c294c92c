// Command moat is the employee client: login, up, status, models, and a local OpenAI-compatible endpoint.
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
	os.Exit(cli.Main("moat", commands, os.Args[1:], os.Stdout, os.Stderr))
}

var commands = []cli.Command{
	{Name: "version", Summary: "print the version", Run: func(_ []string, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, cli.Version())
		return 0
	}},
}
