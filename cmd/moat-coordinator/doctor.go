package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/cli"
)

func doctorCommand() *cobra.Command {
	s := new(serveSettings)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check a deployment and say what to fix",
		Long: `Check a deployment as serve would run it, with the same flags, MOAT_*
variables and --config file: the identity provider (discovery, issuer,
client credentials), the database (reachable, schema version), TLS (the
certificate's expiry and name), the public URL (reachable, /healthz and
/readyz), clock skew and the relay. One line per check: ok, warn or fail,
with what to do. Exits 0 when nothing failed, 3 when a check failed.
Nothing is changed: no migrations, no files written.`,
	}
	cmd.Flags().AddFlagSet(s.flagSet())
	asJSON := cli.JSONFlag(cmd.Flags())
	cli.ConfigFile(cmd, configSchema())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := s.check(cmd); err != nil {
			return err
		}
		d := &doctor{s: s, cfg: s.config(cmd), client: &http.Client{Timeout: checkTimeout}}
		checks := d.run(cmd.Context())
		if err := printChecks(cmd.OutOrStdout(), checks, *asJSON); err != nil {
			return err
		}
		for _, c := range checks {
			if c.Status == statusFail {
				return cli.Exit(cli.ExitNo)
			}
		}
		return nil
	}
	return cmd
}

// checkTimeout bounds each network check.
const checkTimeout = 10 * time.Second

// Check statuses.
const (
	statusOK   = "ok"
	statusWarn = "warn"
	statusFail = "fail"
)

// check is one line of doctor's report.
type check struct {
	Name    string `json:"name"`
	Status  string `json:"status"` // ok, warn or fail
	Message string `json:"message"`
}

func passf(name, format string, args ...any) check {
	return check{name, statusOK, fmt.Sprintf(format, args...)}
}

func warnf(name, format string, args ...any) check {
	return check{name, statusWarn, fmt.Sprintf(format, args...)}
}

func failf(name, format string, args ...any) check {
	return check{name, statusFail, fmt.Sprintf(format, args...)}
}

// doctor runs the checks of one deployment.
type doctor struct {
	s      *serveSettings
	cfg    coordinator.Config
	client *http.Client

	idpDate, dbNow time.Time // reference clocks found on the way
}

func (d *doctor) run(ctx context.Context) []check {
	return []check{
		d.database(ctx),
		d.idp(ctx),
		d.clock(time.Now()),
		d.tls(time.Now()),
		d.publicURL(ctx),
		d.relay(ctx),
	}
}

func printChecks(w io.Writer, checks []check, asJSON bool) error {
	if asJSON {
		return cli.PrintJSON(w, map[string]any{"checks": checks})
	}
	for _, c := range checks {
		if _, err := fmt.Fprintf(w, "%-4s  %-10s  %s\n", c.Status, c.Name, c.Message); err != nil {
			return err
		}
	}
	return nil
}

// database checks that the database answers and that its schema is one
// this build can serve.
func (d *doctor) database(ctx context.Context) check {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	in, err := store.Inspect(ctx, d.cfg.Database, d.cfg.DataDir)
	if err != nil {
		return failf("database", "%v; check --database (or --data-dir) and that the database server is up", err)
	}
	d.dbNow = in.Now
	switch {
	case in.Schema > in.Want:
		return failf("database", "%s, schema version %d is newer than this moat-coordinator knows (%d): run the newer version", in.Kind, in.Schema, in.Want)
	case in.Schema < in.Want:
		return warnf("database", "%s, schema version %d: serve migrates it to %d when it starts (back it up first)", in.Kind, in.Schema, in.Want)
	}
	return passf("database", "%s answers, schema version %d", in.Kind, in.Schema)
}

// idp checks the external identity provider as serve does at start.
func (d *doctor) idp(ctx context.Context) check {
	o := d.cfg.OIDC
	if o.Issuer == "" {
		return passf("idp", "the embedded provider, served by the coordinator under /idp")
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	res, err := coordinator.CheckIdP(ctx, d.client, o, strings.TrimSuffix(d.cfg.PublicURL, "/")+"/oidc/callback")
	if err != nil {
		return failf("idp", "%v", err)
	}
	d.idpDate = res.Date
	if len(res.UnlistedScopes) > 0 {
		return warnf("idp", "%s answers, but does not list the scope %s: if sign-ins fail, remove it from --oidc-scopes",
			res.Issuer, strings.Join(res.UnlistedScopes, ", "))
	}
	if !strings.HasPrefix(res.Credentials, "accepted") {
		return warnf("idp", "%s answers; client credentials %s: a test sign-in shows whether they work", res.Issuer, res.Credentials)
	}
	return passf("idp", "%s answers; client credentials %s", res.Issuer, res.Credentials)
}

// Clock skew limits: ID tokens and TOTP codes are checked against this
// host's clock.
const (
	skewWarn = 10 * time.Second
	skewFail = time.Minute
)

// clock compares this host's clock with the IdP's (its Date header) or
// else the database server's.
func (d *doctor) clock(now time.Time) check {
	ref, what := d.idpDate, "the identity provider's"
	if ref.IsZero() {
		ref, what = d.dbNow, "the database server's"
	}
	if ref.IsZero() {
		return passf("clock", "nothing to compare with (no external identity provider or PostgreSQL answered); keep this host on NTP")
	}
	skew := now.Sub(ref).Round(time.Second)
	desc := fmt.Sprintf("%s ahead of %s clock", skew, what)
	if skew < 0 {
		desc = fmt.Sprintf("%s behind %s clock", -skew, what)
	}
	switch abs := max(skew, -skew); {
	case abs >= skewFail:
		return failf("clock", "this host is %s: sign-ins fail (ID token times, TOTP); fix NTP", desc)
	case abs >= skewWarn:
		return warnf("clock", "this host is %s; check NTP", desc)
	}
	return passf("clock", "within %s of %s clock", skewWarn, what)
}
