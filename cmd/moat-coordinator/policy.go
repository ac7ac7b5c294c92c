package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/moatmesh/moat/policy"
)

const policyUsage = `usage:
  moat-coordinator policy check FILE...
      Validate each policy file and run its tests. Exit 0 when all are valid
      and every test passes; otherwise print FILE:LINE:COL: message for each
      problem and exit 1.

  moat-coordinator policy explain FILE --src WHO (--model NAME | --dst tag:NAME:PORT)
                                  [--groups idp:a,idp:b] [--admin]
      Print whether WHO (a login such as alice@example.com, or tag:NAME)
      may use the model or reach the port, the grant that decides it and,
      when denied, the grants that nearly matched. Exit 0 when the
      explanation is printed, 1 when the policy is invalid.

Exit status 2 means the command line was wrong.
`

// policyCmd implements `moat-coordinator policy check|explain`.
func policyCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsage)
		return 2
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "explain":
		return policyExplain(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, policyUsage)
		return 0
	}
	fmt.Fprintf(stderr, "moat-coordinator policy: unknown subcommand %q\n\n%s", args[0], policyUsage)
	return 2
}

func policyCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("policy check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage) }
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError(err)
	}
	if len(files) == 0 {
		fmt.Fprintf(stderr, "moat-coordinator policy check: name the policy file to check\n\n%s", policyUsage)
		return 2
	}
	status := 0
	for _, file := range files {
		p, err := loadPolicy(file, policy.Check)
		if err != nil {
			fmt.Fprintln(stderr, err)
			status = 1
			continue
		}
		fmt.Fprintf(stdout, "%s: ok: %d models, %d grants; %d tests (%d assertions) pass\n",
			file, len(p.Models), len(p.Grants), len(p.Tests), countAssertions(p))
	}
	return status
}

// usageError maps a flag parsing error to an exit status.
func usageError(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
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
	src, model, dst, groups string
	admin                   bool
}

func policyExplain(args []string, stdout, stderr io.Writer) int {
	var f explainFlags
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, policyUsage) }
	fs.StringVar(&f.src, "src", "", "who asks: a login (alice@example.com) or tag:NAME")
	fs.StringVar(&f.model, "model", "", "the model to explain")
	fs.StringVar(&f.dst, "dst", "", "the network destination to explain, tag:NAME:PORT")
	fs.StringVar(&f.groups, "groups", "", "comma-separated IdP groups the person holds, e.g. idp:ml-research")
	fs.BoolVar(&f.admin, "admin", false, "the person is an admin (autogroup:admin)")
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return usageError(err)
	}
	who, target, err := f.query()
	if err == nil && len(files) != 1 {
		err = errors.New("name exactly one policy file")
	}
	if err != nil {
		fmt.Fprintf(stderr, "moat-coordinator policy explain: %v\n\n%s", err, policyUsage)
		return 2
	}
	p, err := loadPolicy(files[0], policy.Parse)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if err := p.RunTests(); err != nil {
		fmt.Fprintf(stderr, "warning: this policy's own tests fail, so `policy check` refuses it:\n%v\n\n", err)
	}
	e, err := p.Explain(who, target)
	if err != nil {
		fmt.Fprintf(stderr, "moat-coordinator policy explain: %v\n", err)
		return 2
	}
	fmt.Fprint(stdout, e.String())
	return 0
}

// query turns the flags into the identity and target to explain.
func (f *explainFlags) query() (policy.Identity, string, error) {
	var who policy.Identity
	switch {
	case f.src == "":
		return who, "", errors.New("--src is required")
	case strings.HasPrefix(f.src, "tag:"):
		if f.groups != "" || f.admin {
			return who, "", errors.New("--groups and --admin describe a person; --src is a tag")
		}
		who.Tags = strings.Split(f.src, ",")
	default:
		who.Login, who.Admin = f.src, f.admin
	}
	for g := range strings.SplitSeq(f.groups, ",") {
		if g = strings.TrimSpace(g); g != "" {
			who.Groups = append(who.Groups, strings.TrimPrefix(g, "idp:"))
		}
	}
	switch {
	case (f.model == "") == (f.dst == ""):
		return who, "", errors.New("give exactly one of --model and --dst")
	case f.model != "":
		return who, "model:" + strings.TrimPrefix(f.model, "model:"), nil
	}
	return who, f.dst, nil
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
