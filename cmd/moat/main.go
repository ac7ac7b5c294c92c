// Command moat is the employee client: login, up, status, models, and a local OpenAI-compatible endpoint.
//
// Configuration is parsed here and nowhere else, then passed down as typed
// structs. State lives in the user's config directory (moat/), or in
// --state-dir or $MOAT_STATE_DIR; every file there is 0600 in a 0700
// directory, and the device's private key never leaves it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/mesh/client"
)

func main() {
	os.Exit(cli.Main("moat", commands, os.Args[1:], os.Stdout, os.Stderr))
}

var commands = []cli.Command{
	{Name: "login", Summary: "sign this device in (opens a browser; prints a URL and QR code)", Run: cmdLogin},
	{Name: "up", Summary: "connect to the mesh and serve the local OpenAI/Ollama endpoint", Run: cmdUp},
	{Name: "status", Summary: "who you are, this device, connected nodes and your models", Run: cmdStatus},
	{Name: "models", Summary: "list the models you may use", Run: cmdModels},
	{Name: "down", Summary: "stop a running `moat up`", Run: cmdDown},
	{Name: "logout", Summary: "revoke this device's credential and forget it", Run: cmdLogout},
	{Name: "wg-config", Summary: "a wg-quick configuration (and QR code) for the official WireGuard apps", Run: cmdWGConfig},
	{Name: "version", Summary: "print the version", Run: func(_ []string, stdout, _ io.Writer) int {
		fmt.Fprintln(stdout, cli.Version())
		return 0
	}},
}

// newFlagSet returns a flag set for a command with the shared --state-dir
// flag.
func newFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("moat "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("state-dir", "", "where moat keeps its key and credential (default: $MOAT_STATE_DIR, else the user config dir /moat)")
	return fs, dir
}

// runWith resolves the state directory, runs fn until it returns or the
// process is interrupted, and turns its error into an exit code.
func runWith(stderr io.Writer, name string, dirFlag *string, fn func(context.Context, client.Dir) error) int {
	dir, err := resolveStateDir(*dirFlag)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err = fn(ctx, dir)
	}
	if err != nil {
		fmt.Fprintf(stderr, "moat %s: %v\n", name, err)
		return 1
	}
	return 0
}
