package main

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/cli"
)

// tokenKind is one kind of bearer token the coordinator hands out and
// keeps hashed: admin API tokens (`tokens`) and SCIM provisioning tokens
// (`scim-tokens`) share create/list/revoke.
type tokenKind struct {
	use, short     string // the command and its one-line help
	what           string // "admin API token", "SCIM token"
	createShort    string
	revokeShort    string
	nameHint       string // what NAME means in create
	expiry         time.Duration
	lastUsed       bool // list shows when the token was last used
	create         func(ctx context.Context, st *store.DB, name string, expiry time.Duration) (string, error)
	list           func(ctx context.Context, st *store.DB) ([]tokenRow, error)
	revoke         func(ctx context.Context, st *store.DB, id string) error
	notFoundPrefix string // "no API token", "no SCIM token"
}

// tokensCommand manages admin API tokens.
func tokensCommand() *cobra.Command {
	return tokenKind{
		use: "tokens", short: "Make, list and revoke admin API tokens", what: "admin API token",
		createShort: "Make an admin API token; it is printed once", nameHint: "the token's NAME",
		revokeShort: "Revoke an admin API token (its ID from tokens list)", notFoundPrefix: "no API token",
		expiry: coordinator.DefaultAPITokenExpiry, lastUsed: true,
		create: func(ctx context.Context, st *store.DB, name string, expiry time.Duration) (string, error) {
			return coordinator.CreateAPIToken(ctx, st, name, coordinator.CLIActor(), expiry)
		},
		list: func(ctx context.Context, st *store.DB) ([]tokenRow, error) {
			toks, err := st.APITokens(ctx)
			rows := make([]tokenRow, 0, len(toks))
			for _, t := range toks {
				rows = append(rows, tokenRow{ID: t.ID, Name: t.Name, CreatedBy: t.CreatedBy, Created: t.Created,
					Expiry: nonZero(t.Expiry), LastUsed: nonZero(t.LastUsed)})
			}
			return rows, err
		},
		revoke: func(ctx context.Context, st *store.DB, id string) error {
			return coordinator.RevokeAPIToken(ctx, st, id, coordinator.CLIActor())
		},
	}.command()
}

func (k tokenKind) command() *cobra.Command {
	cmd := &cobra.Command{Use: k.use, Short: k.short}
	cmd.AddCommand(k.createCommand(), k.listCommand(), k.revokeCommand())
	return cmd
}

// createCommand makes a token, printed once and stored hashed.
func (k tokenKind) createCommand() *cobra.Command {
	var expiry time.Duration
	cmd := &cobra.Command{Use: "create NAME", Short: k.createShort, Args: cli.Args(1, 1, k.nameHint)}
	cmd.Flags().DurationVar(&expiry, "expiry", k.expiry, "token lifetime")
	o := offlineCommand(cmd, false)
	cmd.RunE = o.with(func(cmd *cobra.Command, st *store.DB, args []string) error {
		if expiry <= 0 {
			return cli.Invalid(cmd, "expiry", "must be longer than 0, not %s", expiry)
		}
		tok, err := k.create(cmd.Context(), st, args[0], expiry)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), tok)
		return nil
	})
	return cmd
}

// tokenRow is one token in `… list`; the secret is never stored.
type tokenRow struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedBy string     `json:"created_by"`
	Created   time.Time  `json:"created"`
	Expiry    *time.Time `json:"expiry,omitempty"`
	LastUsed  *time.Time `json:"last_used,omitempty"`
}

func (k tokenKind) listCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "list", Short: fmt.Sprintf("List %ss (never their secrets)", k.what)}
	asJSON := cli.JSONFlag(cmd.Flags())
	o := offlineCommand(cmd, false)
	cmd.RunE = o.with(func(cmd *cobra.Command, st *store.DB, _ []string) error {
		rows, err := k.list(cmd.Context(), st)
		if err != nil {
			return err
		}
		if *asJSON {
			return cli.PrintJSON(cmd.OutOrStdout(), rows)
		}
		tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
		head := "ID\tNAME\tCREATED BY\tCREATED\tEXPIRES"
		if k.lastUsed {
			head += "\tLAST USED"
		}
		fmt.Fprintln(tw, head)
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s", r.ID, r.Name, r.CreatedBy, r.Created.Local().Format(time.DateTime), orText(r.Expiry, "never"))
			if k.lastUsed {
				fmt.Fprintf(tw, "\t%s", orText(r.LastUsed, "never"))
			}
			fmt.Fprintln(tw)
		}
		return tw.Flush()
	})
	return cmd
}

// revokeCommand deletes a token: it stops working at once.
func (k tokenKind) revokeCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "revoke ID", Short: k.revokeShort, Args: cli.Args(1, 1, "the token's ID")}
	o := offlineCommand(cmd, false)
	cmd.RunE = o.with(func(cmd *cobra.Command, st *store.DB, args []string) error {
		err := k.revoke(cmd.Context(), st, args[0])
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%s %s; see %s list", k.notFoundPrefix, args[0], k.use)
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
