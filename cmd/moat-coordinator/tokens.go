package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/cli"
)

func tokensCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "tokens", Short: "Make, list and revoke admin API tokens"}
	cmd.AddCommand(tokensCreateCommand(), tokensListCommand(), tokensRevokeCommand())
	return cmd
}

// tokensCreateCommand makes an admin API token, printed once and stored
// hashed.
func tokensCreateCommand() *cobra.Command {
	var expiry time.Duration
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Make an admin API token; it is printed once",
		Args:  cli.Args(1, 1, "the token's NAME"),
	}
	cmd.Flags().DurationVar(&expiry, "expiry", coordinator.DefaultAPITokenExpiry, "token lifetime")
	o := offlineCommand(cmd, false)
	cmd.RunE = o.with(func(cmd *cobra.Command, st *store.DB, args []string) error {
		if expiry <= 0 {
			return cli.Invalid(cmd, "expiry", "must be longer than 0, not %s", expiry)
		}
		tok, err := coordinator.CreateAPIToken(cmd.Context(), st, args[0], coordinator.CLIActor(), expiry)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), tok)
		return nil
	})
	return cmd
}

// tokenRow is one token in `tokens list`; the secret is never stored.
type tokenRow struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedBy string     `json:"created_by"`
	Created   time.Time  `json:"created"`
	Expiry    *time.Time `json:"expiry,omitempty"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
}

func tokensListCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: "List admin API tokens (never their secrets)"}
	asJSON := cli.JSONFlag(cmd.Flags())
	o := offlineCommand(cmd, false)
	cmd.RunE = o.with(func(cmd *cobra.Command, st *store.DB, _ []string) error {
		toks, err := st.APITokens(cmd.Context())
		if err != nil {
			return err
		}
		rows := make([]tokenRow, 0, len(toks))
		for _, t := range toks {
			rows = append(rows, tokenRow{ID: t.ID, Name: t.Name, CreatedBy: t.CreatedBy, Created: t.Created,
				Expiry: nonZero(t.Expiry), LastUsed: nonZero(t.LastUsed)})
		}
		if *asJSON {
			return cli.PrintJSON(cmd.OutOrStdout(), rows)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tCREATED BY\tCREATED\tEXPIRES\tLAST USED")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.CreatedBy, r.Created.Local().Format(time.DateTime),
				orText(r.Expiry, "never"), orText(r.LastUsed, "never"))
		}
		return tw.Flush()
	})
	return cmd
}

// tokensRevokeCommand deletes an admin API token: it stops working at
// once.
func tokensRevokeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an admin API token (its ID from tokens list)",
		Args:  cli.Args(1, 1, "the token's ID"),
	}
	o := offlineCommand(cmd, false)
	cmd.RunE = o.with(func(cmd *cobra.Command, st *store.DB, args []string) error {
		err := coordinator.RevokeAPIToken(cmd.Context(), st, args[0], coordinator.CLIActor())
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no API token %s; see tokens list", args[0])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
		return nil
	})
	return cmd
}

func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func orText(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Local().Format(time.DateTime)
}
