// Package cli is the command-line framework the three moat binaries share:
// cobra commands (help, --version, shell completion), settings that may
// also come from MOAT_* environment variables and a config file, *-file
// variants for secrets, --log-level, --json output and the exit codes
// scripts rely on.
//
// A binary builds its cobra command tree and hands it to Main. Errors are
// printed once, prefixed with the command's path; mistakes in the command
// line, the environment or the config file exit with ExitUsage and name
// the flag, variable or file line in the user's terms.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes, the same for every command of every binary.
const (
	ExitOK      = 0 // done; the answer is yes (allowed, running, intact)
	ExitFailure = 1 // the command could not do its work (see the message)
	ExitUsage   = 2 // the command line, environment or config file is wrong
	ExitNo      = 3 // the check ran and the answer is no: denied, not running, tampered
)

// ExitError ends a command with Code. Err, when set, is printed first.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Exit returns an error that ends the command with code and prints
// nothing more (the command has said what it had to).
func Exit(code int) error { return &ExitError{Code: code} }

// Usagef returns an error for a wrong command line, environment or config
// file: it is printed with a pointer to --help and exits with ExitUsage.
func Usagef(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// Main runs root with the process's arguments and exits with its code.
func Main(root *cobra.Command) {
	os.Exit(Run(root, os.Args[1:], os.Stdout, os.Stderr))
}

// Run executes root with args and returns the exit code. It adds
// --version, a version command and the completion command, refuses stray
// arguments and unknown subcommands, and loads each command's settings
// (environment, config file, *-file secrets) before the command runs.
func Run(root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	prepare(root)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if len(args) == 0 {
		root.SetOut(stderr)
		_ = root.Usage()
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd, err := root.ExecuteContextC(ctx)
	return report(cmd, err, stderr)
}

// report prints err for cmd and returns the exit code.
func report(cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if !errors.As(err, &ee) {
		ee = &ExitError{Code: ExitFailure, Err: err}
		if isCobraUsage(err) {
			ee.Code = ExitUsage
		}
	}
	if ee.Err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), ee.Err)
	}
	if ee.Code == ExitUsage {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	}
	return ee.Code
}

// isCobraUsage reports whether err is one of the errors cobra returns
// for an unknown command or flag before any command ran.
func isCobraUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "unknown flag") ||
		strings.HasPrefix(s, "unknown shorthand flag") || strings.Contains(s, "flag needs an argument")
}

// prepare sets the behaviour every command shares.
func prepare(root *cobra.Command) {
	if root.Annotations["moat.prepared"] != "" {
		return
	}
	if root.Annotations == nil {
		root.Annotations = map[string]string{}
	}
	root.Annotations["moat.prepared"] = "true"
	root.Version = Version()
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: err}
	})
	root.AddCommand(&cobra.Command{
		Use: "version", Short: "Print the version",
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(cmd.OutOrStdout(), root.Name(), root.Version)
			return nil
		},
	})
	root.InitDefaultCompletionCmd()
	walk(root, prepareCommand)
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

// prepareCommand refuses stray words and makes a group command without
// its own action refuse a missing or unknown subcommand.
func prepareCommand(c *cobra.Command) {
	c.SilenceErrors, c.SilenceUsage = true, true
	c.DisableFlagsInUseLine = true
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		if !c.HasParent() {
			return // cobra refuses unknown commands at the top
		}
		c.Args = cobra.ArbitraryArgs
		c.RunE = groupRun
		return
	}
	if c.Args == nil {
		c.Args = cobra.NoArgs
	}
	args := c.Args
	c.Args = func(cmd *cobra.Command, a []string) error {
		if err := args(cmd, a); err != nil {
			return &ExitError{Code: ExitUsage, Err: argsError(cmd, a, err)}
		}
		return nil
	}
	if c.PreRunE == nil {
		c.PreRunE = func(cmd *cobra.Command, _ []string) error { return LoadSettings(cmd) }
	}
}

// argsError rewrites cobra's argument errors in the user's terms.
func argsError(cmd *cobra.Command, a []string, err error) error {
	if strings.HasPrefix(err.Error(), "unknown command") && len(a) > 0 {
		return fmt.Errorf("unexpected argument %q: this command takes no arguments (flags start with --)", a[0])
	}
	return err
}

// groupRun is the action of a command that only groups subcommands.
func groupRun(cmd *cobra.Command, args []string) error {
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	if len(args) == 0 {
		return Usagef("name a subcommand: %s", strings.Join(names, ", "))
	}
	return Usagef("unknown subcommand %q (want %s)", args[0], strings.Join(names, ", "))
}

// Args returns an argument check for commands that take between min and
// max positional arguments (max < 0: no limit), described as what.
func Args(min, max int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return fmt.Errorf("missing %s", what)
		case max >= 0 && len(args) > max:
			return fmt.Errorf("unexpected argument %q: give %s and flags (flags start with --)", args[max], what)
		}
		return nil
	}
}
