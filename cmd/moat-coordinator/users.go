package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/cli"
)

// offline are the settings of the commands that change the coordinator's
// state directly (users, tokens): where it is and, for setup links, the
// public URL. They read the coordinator's --config file and variables.
type offline struct {
	store     storeSettings
	publicURL string
}

// offlineCommand gives cmd the offline settings.
func offlineCommand(cmd *cobra.Command, withURL bool) *offline {
	o := new(offline)
	fs := pflag.NewFlagSet(cmd.Name(), pflag.ContinueOnError)
	o.store.register(fs)
	if withURL {
		fs.StringVar(&o.publicURL, "public-url", "", "URL people reach the coordinator at, for the setup link (required)")
	}
	cli.Settings(fs)
	cmd.Flags().AddFlagSet(fs)
	cli.ConfigFile(cmd, configSchema())
	return o
}

// with returns a command action that runs fn with the coordinator's
// store, opened as serve would, and closes it.
func (o *offline) with(fn func(cmd *cobra.Command, st *store.DB, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		st, err := store.Open(cmd.Context(), o.store.database, o.store.dataDir)
		if err != nil {
			return err
		}
		defer st.Close()
		return fn(cmd, st, args)
	}
}

func usersCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "users", Short: "Manage people: add embedded-provider users, list everyone, reset second factors, export or erase one person's data"}
	cmd.AddCommand(usersAddCommand(), usersListCommand(), usersResetMFACommand(), usersExportCommand(), usersEraseCommand())
	return cmd
}

// usersAddCommand prints a one-time setup link where the person chooses
// a password and enrolls TOTP with the embedded provider.
func usersAddCommand() *cobra.Command {
	var (
		admin  bool
		name   string
		groups []string
		ttl    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "add EMAIL",
		Short: "Add a user to the embedded identity provider and print their one-time setup link",
		Args:  cli.Args(1, 1, "the person's EMAIL"),
	}
	cmd.Flags().BoolVar(&admin, "admin", false, "make the person an admin")
	cmd.Flags().StringVar(&name, "name", "", "display name")
	cmd.Flags().StringSliceVar(&groups, "groups", nil, "groups the person belongs to (comma-separated)")
	cmd.Flags().DurationVar(&ttl, "link-ttl", 24*time.Hour, "how long the setup link works")
	o := offlineCommand(cmd, true)
	add := o.with(func(cmd *cobra.Command, st *store.DB, args []string) error {
		link, err := idp.AddUser(cmd.Context(), st, args[0], name, admin, groups, o.publicURL, ttl)
		if err != nil {
			return err
		}
		detail := fmt.Sprintf("admin=%t groups=%s", admin, strings.Join(groups, ","))
		if err := coordinator.RecordCLIAction(cmd.Context(), st, coordinator.ActionIdPUserAdd, args[0], detail); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Setup link for %s (works once, for %s):\n  %s\n", args[0], ttl, link)
		return nil
	})
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := cli.Required(cmd, "public-url"); err != nil {
			return err
		}
		if err := checkPublicURL(cmd, o.publicURL); err != nil {
			return err
		}
		return add(cmd, args)
	}
	return cmd
}

// userRow is one person in `users list`.
type userRow struct {
	Email     string     `json:"email"`
	Name      string     `json:"name,omitempty"`
	Role      string     `json:"role"`
	Groups    []string   `json:"groups,omitempty"`
	Disabled  bool       `json:"disabled"`
	LastLogin *time.Time `json:"last_login,omitempty"`
	// Local is true for a user of the embedded provider; SetupPending
	// while their setup link is unused.
	Local        bool `json:"local"`
	SetupPending bool `json:"setup_pending,omitempty"`
}

func usersListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the people who have signed in and the embedded provider's users",
	}
	asJSON := cli.JSONFlag(cmd.Flags())
	o := offlineCommand(cmd, false)
	cmd.RunE = o.with(func(cmd *cobra.Command, st *store.DB, _ []string) error {
		rows, err := listUsers(cmd.Context(), st)
		if err != nil {
			return err
		}
		if *asJSON {
			return cli.PrintJSON(cmd.OutOrStdout(), rows)
		}
		printUsers(cmd.OutOrStdout(), rows)
		return nil
	})
	return cmd
}

// listUsers merges the people known to the coordinator with the local
// users of the embedded provider who have not signed in yet.
func listUsers(ctx context.Context, st *store.DB) ([]userRow, error) {
	users, err := st.Users(ctx)
	if err != nil {
		return nil, err
	}
	local, err := st.IdPUsers(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]userRow, 0, len(users)+len(local))
	seen := map[string]int{}
	for _, u := range users {
		r := userRow{Email: u.Email, Name: u.Name, Role: u.Role, Groups: u.Groups, Disabled: u.Disabled, LastLogin: nonZero(u.LastLogin)}
		seen[u.Email] = len(rows)
		rows = append(rows, r)
	}
	for _, u := range local {
		if i, ok := seen[u.Email]; ok {
			rows[i].Local = true
			continue
		}
		role := "member"
		if u.Admin {
			role = "admin"
		}
		rows = append(rows, userRow{Email: u.Email, Name: u.Name, Role: role, Groups: u.Groups, Local: true, SetupPending: u.PasswordHash == ""})
	}
	return rows, nil
}

func printUsers(w io.Writer, rows []userRow) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tROLE\tLAST SIGN-IN\tSTATE")
	for _, r := range rows {
		last := "never"
		if r.LastLogin != nil {
			last = r.LastLogin.Local().Format(time.DateTime)
		}
		state := "active"
		switch {
		case r.Disabled:
			state = "disabled"
		case r.SetupPending:
			state = "setup link not used yet"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Email, r.Role, last, state)
	}
	tw.Flush()
}

// usersResetMFACommand removes the coordinator's own second factors of a
// person who lost theirs (docs/identity.md, "Passkeys").
func usersResetMFACommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reset-mfa EMAIL",
		Short: "Remove a person's authenticator app and passkeys at the coordinator, so that they enroll anew at their next sign-in",
		Long: `Remove the second factors the coordinator itself asks for (its authenticator
app and step-up passkeys) of the person with EMAIL, for someone who lost
theirs: their next sign-in asks them to enroll again. For a user of the
embedded identity provider, also give them a new setup link with
"users add EMAIL": it replaces their password, app and passkeys there.`,
		Args: cli.Args(1, 1, "the person's EMAIL"),
	}
	o := offlineCommand(cmd, false)
	cmd.RunE = o.with(func(cmd *cobra.Command, st *store.DB, args []string) error {
		local, err := coordinator.ResetMFA(cmd.Context(), st, args[0])
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "The coordinator's own second factors of %s are removed; they enroll anew at their next sign-in.\n", args[0])
		if local {
			fmt.Fprintf(cmd.OutOrStdout(), "%s signs in at the embedded identity provider: give them a new setup link with\n  moat-coordinator users add %s --public-url URL\n", args[0], args[0])
		}
		return nil
	})
	return cmd
}
