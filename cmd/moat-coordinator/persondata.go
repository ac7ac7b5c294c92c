package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/internal/cli"
)

// usersExportCommand writes one person's data as JSON (GDPR Art. 15, 20).
func usersExportCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "export EMAIL|USER-ID",
		Short: "Write everything moat holds about one person's use of models as JSON",
		Long: `Write everything moat holds about one person's use of models as JSON: who
they are and every audit record of theirs, newest first, as the node sealed
it, with the prompt it kept opened (unless their prompt key was erased).
The export is in the admin trail (user.export). Same as GET
/api/v1/admin/users/ID/export.`,
		Args: cli.Args(1, 1, "the person's EMAIL or user id"),
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (made with mode 0600); empty: standard output")
	st := opsCommand(cmd, nil)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := st.config(cmd)
		if err != nil {
			return err
		}
		exp, err := coordinator.ExportPerson(cmd.Context(), cfg, args[0])
		if err != nil {
			return err
		}
		if out == "" {
			return cli.PrintJSON(cmd.OutOrStdout(), exp)
		}
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if err := cli.PrintJSON(f, exp); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "Wrote %d records of %s to %s.\n", len(exp.Records), exp.Person.Email, out)
		return nil
	}
	return cmd
}

// usersEraseCommand destroys one person's prompt key (GDPR Art. 17).
func usersEraseCommand() *cobra.Command {
	var why string
	cmd := &cobra.Command{
		Use:   "erase EMAIL|USER-ID --reason TEXT",
		Short: "Destroy a person's prompt key, so the prompts nodes kept of theirs can never be read",
		Long: `Destroy a person's prompt key. The prompts nodes kept of theirs (grants with
"audit": {"prompts": "full"}) were encrypted to it, so no one can read them
any more, while the audit records and their hash chains still verify; no
prompt of theirs is kept from now on. The erasure is in the admin trail
(user.erase) with --reason. Running coordinators stop handing the key to
nodes within 30 seconds. Backups taken before still hold the key: see
docs/compliance.md. Same as POST /api/v1/admin/users/ID/erase.`,
		Args: cli.Args(1, 1, "the person's EMAIL or user id"),
	}
	cmd.Flags().StringVar(&why, "reason", "", `why the person is erased, for the admin trail, e.g. "GDPR Art. 17 request #123" (required)`)
	st := opsCommand(cmd, nil)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cli.Required(cmd, "reason"); err != nil {
			return err
		}
		cfg, err := st.config(cmd)
		if err != nil {
			return err
		}
		if err := coordinator.ErasePerson(cmd.Context(), cfg, args[0], why); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Erased the prompt key of %s.\n", args[0])
		return nil
	}
	return cmd
}
