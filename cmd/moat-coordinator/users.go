package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/store"
)

// openStore opens the coordinator's store as serve would, for the
// commands that change it offline.
func openStore(ctx context.Context, f *serveFlags) (*store.DB, error) {
	return store.Open(ctx, f.database, f.dataDir)
}

// usersCmd: moat-coordinator users add [--admin] [--name NAME] EMAIL.
// It prints a one-time setup link where the person chooses a password and
// enrolls TOTP with the embedded provider.
func usersCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "add" {
		fmt.Fprintln(stderr, "usage: moat-coordinator users add [--admin] [--name NAME] [--groups a,b] --public-url URL EMAIL")
		return 2
	}
	f := newServeFlags("users add", stderr)
	admin := f.fs.Bool("admin", false, "make the person an admin")
	name := f.fs.String("name", "", "display name")
	groups := f.fs.String("groups", "", "comma-separated groups")
	ttl := f.fs.Duration("link-ttl", 24*time.Hour, "how long the setup link works")
	if err := f.parse(args[1:]); err != nil || f.fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: moat-coordinator users add [--admin] [--name NAME] --public-url URL EMAIL")
		return 2
	}
	if f.publicURL == "" {
		fmt.Fprintln(stderr, "moat-coordinator users add: --public-url (or MOAT_PUBLIC_URL) is required for the setup link")
		return 2
	}
	ctx := context.Background()
	st, err := openStore(ctx, f)
	if err != nil {
		fmt.Fprintln(stderr, "moat-coordinator users add:", err)
		return 1
	}
	defer st.Close()
	link, err := idp.AddUser(ctx, st, f.fs.Arg(0), *name, *admin, splitList(*groups), f.publicURL, *ttl)
	if err != nil {
		fmt.Fprintln(stderr, "moat-coordinator users add:", err)
		return 1
	}
	fmt.Fprintf(stdout, "Setup link for %s (works once, for %s):\n  %s\n", f.fs.Arg(0), *ttl, link)
	return 0
}

// tokensCmd: moat-coordinator tokens create NAME — an admin API token,
// printed once and stored hashed.
func tokensCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "create" {
		fmt.Fprintln(stderr, "usage: moat-coordinator tokens create [--expiry 720h] NAME")
		return 2
	}
	f := newServeFlags("tokens create", stderr)
	expiry := f.fs.Duration("expiry", 0, "token lifetime; 0 = no expiry")
	if err := f.parse(args[1:]); err != nil || f.fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: moat-coordinator tokens create [--expiry 720h] NAME")
		return 2
	}
	ctx := context.Background()
	st, err := openStore(ctx, f)
	if err != nil {
		fmt.Fprintln(stderr, "moat-coordinator tokens create:", err)
		return 1
	}
	defer st.Close()
	tok, err := coordinator.CreateAPIToken(ctx, st, f.fs.Arg(0), "cli", *expiry)
	if err != nil {
		fmt.Fprintln(stderr, "moat-coordinator tokens create:", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s\n", tok)
	return 0
}
