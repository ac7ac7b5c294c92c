package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/node/audit"
	"github.com/moatmesh/moat/node/lockdown"
)

func lockdownCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "lockdown", Short: "Show or remove the nftables lockdown"}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show the lockdown the kernel holds; exit 3 when it is off",
	}
	asJSON := cli.JSONFlag(status.Flags())
	status.RunE = func(cmd *cobra.Command, _ []string) error { return lockdownStatus(cmd, *asJSON) }
	off := &cobra.Command{
		Use:   "off",
		Short: "Remove the lockdown (table inet moat; other tables untouched)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lockdown.Off(); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "lockdown removed (table inet moat deleted; other tables untouched)")
			return nil
		},
	}
	cmd.AddCommand(status, off)
	return cmd
}

// lockdownJSON is `lockdown status --json`.
type lockdownJSON struct {
	Applied  bool               `json:"applied"`
	Scope    string             `json:"scope,omitempty"`
	Chains   []lockdown.Chain   `json:"chains"`
	Sets     []lockdown.Set     `json:"sets"`
	Counters []lockdown.Counter `json:"counters"`
}

func lockdownStatus(cmd *cobra.Command, asJSON bool) error {
	st, err := lockdown.Inspect()
	applied := !errors.Is(err, lockdown.ErrNotApplied)
	if err != nil && applied {
		return err
	}
	switch {
	case asJSON:
		err = cli.PrintJSON(cmd.OutOrStdout(), lockdownJSON{Applied: applied, Scope: string(st.Scope), Chains: st.Chains, Sets: st.Sets, Counters: st.Counters})
	case applied:
		_, err = fmt.Fprint(cmd.OutOrStdout(), st.String())
	default:
		_, err = fmt.Fprintln(cmd.OutOrStdout(), "lockdown is off")
	}
	if err == nil && !applied {
		return cli.Exit(cli.ExitNo)
	}
	return err
}

func auditCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Check the node's audit spool"}
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Check every audit record's hash and chain link; exit 3 when the spool was tampered with",
	}
	var state string
	fs := pflag.NewFlagSet("verify", pflag.ContinueOnError)
	fs.StringVar(&state, "state-dir", defaultStateDir, "the node's state directory")
	cli.Settings(fs)
	verify.Flags().AddFlagSet(fs)
	asJSON := cli.JSONFlag(verify.Flags())
	cli.ConfigFile(verify, configSchema())
	verify.RunE = func(cmd *cobra.Command, _ []string) error { return auditVerify(cmd, state, *asJSON) }
	cmd.AddCommand(verify)
	return cmd
}

// verifyJSON is `audit verify --json`.
type verifyJSON struct {
	Spool  string `json:"spool"`
	Exists bool   `json:"exists"` // false before the node served its first request
	Intact bool   `json:"intact"`
	Error  string `json:"error,omitempty"`
}

func auditVerify(cmd *cobra.Command, state string, asJSON bool) error {
	if fi, err := os.Stat(state); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return fmt.Errorf("state dir %s (%s): %w", state, cli.Where(cmd, "state-dir"), err)
	}
	dir := filepath.Join(state, "audit")
	r := verifyJSON{Spool: filepath.Join(dir, audit.SpoolFile)}
	_, statErr := os.Stat(r.Spool)
	r.Exists = statErr == nil
	err := audit.Verify(dir)
	if err != nil && !errors.Is(err, audit.ErrTampered) {
		return err
	}
	r.Intact = err == nil
	if err != nil {
		r.Error = err.Error()
	}
	if asJSON {
		if e := cli.PrintJSON(cmd.OutOrStdout(), r); e != nil {
			return e
		}
	} else {
		printVerify(cmd, r)
	}
	if !r.Intact {
		return cli.Exit(cli.ExitNo)
	}
	return nil
}

func printVerify(cmd *cobra.Command, r verifyJSON) {
	switch {
	case !r.Intact:
		fmt.Fprintln(cmd.ErrOrStderr(), r.Error)
	case !r.Exists:
		fmt.Fprintf(cmd.OutOrStdout(), "no audit records yet (%s does not exist)\n", r.Spool)
	default:
		fmt.Fprintln(cmd.OutOrStdout(), "audit spool intact: every record's hash and chain link checks out")
	}
}
