package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/coordinator/scim"
	"github.com/moatmesh/moat/coordinator/store"
)

// scimTokensCommand manages the bearer tokens an IdP's SCIM provisioning
// agent uses at /scim/v2 (docs/identity.md).
func scimTokensCommand() *cobra.Command {
	return tokenKind{
		use: "scim-tokens", short: "Make, list and revoke SCIM provisioning tokens (for /scim/v2)", what: "SCIM token",
		createShort: "Make a SCIM token for an IdP's provisioning; it is printed once", nameHint: "the token's NAME (e.g. the IdP's)",
		revokeShort:    "Revoke a SCIM token (its ID from scim-tokens list); it stops working at once",
		notFoundPrefix: "no SCIM token", expiry: scim.DefaultTokenExpiry,
		create: func(ctx context.Context, st *store.DB, name string, expiry time.Duration) (string, error) {
			return scim.CreateToken(ctx, st, name, "cli", expiry)
		},
		list: func(ctx context.Context, st *store.DB) ([]tokenRow, error) {
			toks, err := st.SCIMTokens(ctx)
			rows := make([]tokenRow, 0, len(toks))
			for _, t := range toks {
				rows = append(rows, tokenRow{ID: t.ID, Name: t.Name, CreatedBy: t.CreatedBy, Created: t.Created, Expiry: nonZero(t.Expiry)})
			}
			return rows, err
		},
		revoke: func(ctx context.Context, st *store.DB, id string) error { return scim.RevokeToken(ctx, st, id, "cli") },
	}.command()
}
