// Package cli is the small subcommand dispatcher the three moat binaries
// share: `NAME COMMAND [flags]`, with help and the version.
package cli

import (
	"fmt"
	"io"
	"runtime/debug"
)

// Command is one subcommand. Run receives the arguments after the command
// name and returns the process exit code.
type Command struct {
	Name    string
	Summary string
	Run     func(args []string, stdout, stderr io.Writer) int
}

// Main dispatches args to the command they name. It prints usage and
// returns 2 for a missing or unknown command.
func Main(prog string, cmds []Command, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(prog, cmds, stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range cmds {
		if c.Name == args[0] {
			return c.Run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", prog, args[0])
	usage(prog, cmds, stderr)
	return 2
}

func usage(prog string, cmds []Command, w io.Writer) {
	fmt.Fprintf(w, "usage: %s COMMAND [flags]\n\ncommands:\n", prog)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND -h' for a command's flags.\n", prog)
}

// Version returns the module version and VCS revision the binary was built
// from, as far as the build recorded them.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "moat (unknown version)"
	}
	v := "moat " + bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v + " " + bi.GoVersion
}
