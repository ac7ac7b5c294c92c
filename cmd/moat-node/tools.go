package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/lockdown"
)

// lockdownCmd: moat-node lockdown status | off.
func lockdownCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || (args[0] != "status" && args[0] != "off") {
		fmt.Fprintln(stderr, "usage: moat-node lockdown status | off")
		return 2
	}
	if args[0] == "off" {
		if err := lockdown.Off(); err != nil {
			fmt.Fprintln(stderr, "moat-node lockdown off:", err)
			return 1
		}
		fmt.Fprintln(stdout, "lockdown removed (table inet moat deleted; other tables untouched)")
		return 0
	}
	st, err := lockdown.Inspect()
	if errors.Is(err, lockdown.ErrNotApplied) {
		fmt.Fprintln(stdout, "lockdown is off")
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "moat-node lockdown status:", err)
		return 1
	}
	fmt.Fprint(stdout, st.String())
	return 0
}

// auditCmd: moat-node audit verify — checks the spool's hash chain.
func auditCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	state := fs.String("state-dir", "/var/lib/moat-node", "the node's state directory")
	if len(args) == 0 || args[0] != "verify" || fs.Parse(args[1:]) != nil {
		fmt.Fprintln(stderr, "usage: moat-node audit verify [--state-dir DIR]")
		return 2
	}
	if err := audit.Verify(filepath.Join(*state, "audit")); err != nil {
		fmt.Fprintln(stderr, "moat-node audit verify:", err)
		return 1
	}
	fmt.Fprintln(stdout, "audit spool intact: every record's hash and chain link checks out")
	return 0
}
