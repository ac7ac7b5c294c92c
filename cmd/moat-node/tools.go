package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/node"
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
		Short: "Remove the lockdown (tables inet moat and netdev moat; other tables untouched); refused while a node watches it",
		Long: `Remove the lockdown (tables inet moat and netdev moat; other tables untouched).

A running moat-node watches its lockdown and restores it within a second,
reporting the removal to the coordinator as a loss; so while one runs in
this network namespace, off refuses and says to stop the node first
(systemctl stop moat-node). --force removes it anyway.`,
	}
	force := off.Flags().Bool("force", false, "remove the lockdown even while a running node watches it (it will restore it and report a loss)")
	off.RunE = func(cmd *cobra.Command, _ []string) error { return lockdownOff(cmd, *force) }
	cmd.AddCommand(status, off)
	return cmd
}

// offExposes says what removing the lockdown opens.
const offExposes = "without the lockdown every process on this host may send anywhere (the internet included), " +
	"so a compromised model server or a generated script can send prompts out, and nothing but the model server's own " +
	"settings keeps its port off the network"

func lockdownOff(cmd *cobra.Command, force bool) error {
	if pid := node.LockdownHolder(); pid != 0 {
		if !force {
			return fmt.Errorf("moat-node (pid %d) is running and watches the lockdown: it would put it back within a second and report the removal as a loss. "+
				"Stop the node first (systemctl stop moat-node, or kill %d), then run this again; --force removes it anyway", pid, pid)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: moat-node (pid %d) is running; it will restore the lockdown at once and report a loss\n", pid)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s\n", offExposes)
	if err := lockdown.Off(); err != nil {
		return err
	}
	fmt.Fprintln(cmd.OutOrStdout(), "lockdown removed (tables inet moat and netdev moat deleted; other tables untouched)")
	return nil
}

// lockdownJSON is `lockdown status --json`.
type lockdownJSON struct {
	Applied bool `json:"applied"`
	// WatchedBy is the pid of the running node that watches the lockdown
	// in this network namespace; 0 when none does.
	WatchedBy int                `json:"watchedBy"`
	Scope     string             `json:"scope,omitempty"`
	Chains    []lockdown.Chain   `json:"chains"`
	Sets      []lockdown.Set     `json:"sets"`
	Counters  []lockdown.Counter `json:"counters"`
}

func lockdownStatus(cmd *cobra.Command, asJSON bool) error {
	st, err := lockdown.Inspect()
	applied := !errors.Is(err, lockdown.ErrNotApplied)
	if err != nil && applied {
		return err
	}
	switch {
	case asJSON:
		err = cli.PrintJSON(cmd.OutOrStdout(), lockdownJSON{Applied: applied, WatchedBy: node.LockdownHolder(),
			Scope: string(st.Scope), Chains: st.Chains, Sets: st.Sets, Counters: st.Counters})
	case applied:
		_, err = fmt.Fprint(cmd.OutOrStdout(), st.String())
		if pid := node.LockdownHolder(); pid != 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "\nwatched by moat-node pid %d: restored at once if removed\n", pid)
		} else {
			fmt.Fprintln(cmd.OutOrStdout(), "\nno running moat-node watches it: if it is removed, nothing restores it")
		}
	default:
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "LOCKDOWN IS OFF: %s.\nmoat-node join/run apply it by default (--lockdown host); see docs/lockdown.md\n", offExposes)
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
	// Records in the spool, and those retention deleted before them under
	// checkpoints.
	Records     int    `json:"records"`
	Deleted     uint64 `json:"deleted"`
	Checkpoints int    `json:"checkpoints"`
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
	rep, err := audit.VerifyReport(dir)
	if err != nil && !errors.Is(err, audit.ErrTampered) {
		return err
	}
	r.Records, r.Deleted, r.Checkpoints = rep.Records, rep.Deleted, rep.Checkpoints
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
	case r.Deleted > 0:
		fmt.Fprintf(cmd.OutOrStdout(), "audit spool intact: every record's hash and chain link checks out (%d records; %d older ones deleted by retention under %d checkpoints)\n", r.Records, r.Deleted, r.Checkpoints)
	default:
		fmt.Fprintln(cmd.OutOrStdout(), "audit spool intact: every record's hash and chain link checks out")
	}
}
