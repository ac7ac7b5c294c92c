package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/coordinator/scim"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/cli"
)

// scimTokensCommand manages the bearer tokens an IdP's SCIM provisioning
// agent uses at /scim/v2 (docs/identity.md).
func scimTokensCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "scim-tokens", Short: "Make, list and revoke SCIM provisioning tokens (for /scim/v2)"}
	cmd.AddCommand(scimTokensCreateCommand(), scimTokensListCommand(), scimTokensRevokeCommand())
	return cmd
}

func scimTokensCreateCommand() *cobra.Command {
	var expiry time.Duration
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Make a SCIM token for an IdP's provisioning; it is printed once",
		Args:  cli.Args(1, 1, "the token's NAME (e.g. the IdP's)"),
	}
	cmd.Flags().DurationVar(&expiry, "expiry", scim.DefaultTokenExpiry, "token lifetime")
	o := offlineCommand(cmd, false)
	cmd.RunE = o.with(func(cmd *cobra.Command, st *store.DB, args []string) error {
		if expiry <= 0 {
			return cli.Invalid(cmd, "expiry", "must be longer than 0, not %s", expiry)
		}
		tok, err := scim.CreateToken(cmd.Context(), st, args[0], "cli", expiry)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), tok)
		return nil
	})
	return cmd
}

func scimTokensListCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: "List SCIM tokens (never their secrets)"}
	asJSON := cli.JSONFlag(cmd.Flags())
	o := offlineCommand(cmd, false)
	cmd.RunE = o.with(func(cmd *cobra.Command, st *store.DB, _ []string) error {
		toks, err := st.SCIMTokens(cmd.Context())
		if err != nil {
			return err
		}
		rows := make([]tokenRow, 0, len(toks))
		for _, t := range toks {
			rows = append(rows, tokenRow{ID: t.ID, Name: t.Name, CreatedBy: t.CreatedBy, Created: t.Created, Expiry: nonZero(t.Expiry)})
		}
		if *asJSON {
			return cli.PrintJSON(cmd.OutOrStdout(), rows)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED BY\tCREATED\tEXPIRES")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.CreatedBy, r.Created.Local().Format(time.DateTime), orText(r.Expiry, "never"))
		}
		return tw.Flush()
	})
	return cmd
}

func scimTokensRevokeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a SCIM token (its ID from scim-tokens list); it stops working at once",
		Args:  cli.Args(1, 1, "the token's ID"),
	}
	o := offlineCommand(cmd, false)
	cmd.RunE = o.with(func(cmd *cobra.Command, st *store.DB, args []string) error {
		err := scim.RevokeToken(cmd.Context(), st, args[0], "cli")
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no SCIM token %s; see scim-tokens list", args[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
		return nil
	})
	return cmd
}
