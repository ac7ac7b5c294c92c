package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/policy"
)

func policyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Check or explain a policy file"}
	cmd.AddCommand(policyCheckCommand(), policyExplainCommand())
	return cmd
}

func policyCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE...",
		Short: "Validate policy files and run their tests",
		Long: `Validate each policy file and run its tests. Exit 0 when all are valid and
every test passes; otherwise print FILE:LINE:COL: message for each problem
and exit 1.`,
		Args: cli.Args(1, -1, "the policy FILE to check"),
		RunE: func(cmd *cobra.Command, files []string) error {
			failed := false
			for _, file := range files {
				p, err := loadPolicy(file, policy.Check)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
					failed = true
					continue
				}
				servers := ""
				if len(p.MCP) > 0 {
					servers = fmt.Sprintf(", %d MCP servers", len(p.MCP))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: ok: %d models%s, %d grants; %d tests (%d assertions) pass\n",
					file, len(p.Models), servers, len(p.Grants), len(p.Tests), countAssertions(p))
			}
			if failed {
				return cli.Exit(cli.ExitFailure)
			}
			return nil
		},
	}
}

func countAssertions(p *policy.Policy) int {
	n := 0
	for _, t := range p.Tests {
		n += len(t.Accept) + len(t.Deny)
	}
	return n
}

// loadPolicy reads file and parses it with parse (policy.Parse or
// policy.Check). Errors already name the file.
func loadPolicy(file string, parse func(string, []byte) (*policy.Policy, error)) (*policy.Policy, error) {
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", file, errors.Unwrap(err))
	}
	return parse(file, src)
}

// explainFlags are the flags of `policy explain`.
type explainFlags struct {
	src, model, dst, mcp string
	groups               []string
	admin, json          bool
	mfa                  string
}

func policyExplainCommand() *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain FILE --src WHO (--model NAME | --mcp SERVER:TOOL | --dst tag:NAME:PORT)",
		Short: "Explain whether someone may use a model or MCP tool, or reach a port",
		Long: `Print whether WHO (a login such as alice@example.com, or tag:NAME) may use
the model, call the MCP tool or reach the port, the grant that decides it and, when denied,
the grants that nearly matched. Exit 0 when allowed, 3 when denied, 1 when
the policy is invalid.`,
		Args: cli.Args(1, 1, "the policy FILE"),
		RunE: func(cmd *cobra.Command, args []string) error { return f.run(cmd, args[0]) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.src, "src", "", "who asks: a login (alice@example.com) or tag:NAME")
	fs.StringVar(&f.model, "model", "", "the model to explain")
	fs.StringVar(&f.dst, "dst", "", "the network destination to explain, tag:NAME:PORT")
	fs.StringVar(&f.mcp, "mcp", "", "the MCP tool to explain, SERVER:TOOL")
	fs.StringSliceVar(&f.groups, "groups", nil, "IdP groups the person holds, e.g. idp:ml-research (comma-separated)")
	fs.BoolVar(&f.admin, "admin", false, "the person is an admin (autogroup:admin)")
	fs.StringVar(&f.mfa, "mfa", "", "how the person's last MFA was proved (RFC 8176): hwk (security key), swk (synced passkey), otp (app code) or mfa; default: whatever factor a grant demands")
	fs.BoolVar(&f.json, "json", false, "print JSON instead of text")
	return cmd
}

func (f *explainFlags) run(cmd *cobra.Command, file string) error {
	who, target, err := f.query()
	if err != nil {
		return cli.Usagef("%v", err)
	}
	p, err := loadPolicy(file, policy.Parse)
	if err != nil {
		return err
	}
	if err := p.RunTests(); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: this policy's own tests fail, so `policy check` refuses it:\n%v\n\n", err)
	}
	e, err := p.Explain(who, target)
	if err != nil {
		return cli.Usagef("%v", err)
	}
	if f.json {
		err = cli.PrintJSON(cmd.OutOrStdout(), explainJSON(e))
	} else {
		_, err = fmt.Fprint(cmd.OutOrStdout(), e.String())
	}
	if err == nil && !e.Allowed {
		return cli.Exit(cli.ExitNo)
	}
	return err
}

// query turns the flags into the identity and target to explain.
func (f *explainFlags) query() (policy.Identity, string, error) {
	var who policy.Identity
	switch {
	case f.src == "":
		return who, "", errors.New("--src is required")
	case strings.HasPrefix(f.src, "tag:"):
		if len(f.groups) > 0 || f.admin {
			return who, "", errors.New("--groups and --admin describe a person; --src is a tag")
		}
		who.Tags = strings.Split(f.src, ",")
	default:
		who.Login, who.Admin = f.src, f.admin
	}
	switch f.mfa {
	case "", "hwk", "swk", "otp", "mfa":
		who.MFAMethod = f.mfa
	default:
		return who, "", fmt.Errorf("--mfa %q: use hwk, swk, otp or mfa", f.mfa)
	}
	for _, g := range f.groups {
		if g = strings.TrimSpace(g); g != "" {
			who.Groups = append(who.Groups, strings.TrimPrefix(g, "idp:"))
		}
	}
	switch {
	case countSet(f.model, f.dst, f.mcp) != 1:
		return who, "", errors.New("give exactly one of --model, --mcp and --dst")
	case f.model != "":
		return who, "model:" + strings.TrimPrefix(f.model, "model:"), nil
	case f.mcp != "":
		return who, "mcp:" + strings.TrimPrefix(f.mcp, "mcp:"), nil
	}
	return who, f.dst, nil
}

// explanation is `policy explain --json`.
type explanation struct {
	Decision   string          `json:"decision"` // "allowed" or "denied"
	Who        policy.Identity `json:"who"`
	Target     string          `json:"target"`
	Grants     []grantRef      `json:"grants"` // the grants a request tries in order; empty when denied
	Principals []string        `json:"principals"`
	Notes      []string        `json:"notes"`
}

// grantRef names a grant and where it is.
type grantRef struct {
	ID   string `json:"id"`
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
	MFA  string `json:"mfa,omitempty"` // the longest time since the last MFA the grant accepts
}

func explainJSON(e *policy.Explanation) explanation {
	out := explanation{Decision: "denied", Who: e.Who, Target: e.Target, Grants: []grantRef{},
		Principals: append([]string{}, e.Principals...), Notes: append([]string{}, e.Notes...)}
	if e.Allowed {
		out.Decision = "allowed"
	}
	for _, g := range e.Chain {
		r := grantRef{ID: g.ID(), File: e.File, Line: g.Pos.Line, Col: g.Pos.Col}
		if g.MFA != 0 {
			r.MFA = g.MFA.Short()
		}
		out.Grants = append(out.Grants, r)
	}
	return out
}

// countSet counts the non-empty values.
func countSet(vals ...string) int {
	n := 0
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	return n
}
