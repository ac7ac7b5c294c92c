package policy

import (
	"fmt"
	"slices"
	"strings"
)

// Explanation says why an identity may or may not reach a target, in terms
// an admin can act on.
type Explanation struct {
	Who    Identity
	Target string // "model:NAME" or "tag:NAME:PORT"
	// Allowed is the decision for a caller with fresh MFA (by
	// Who.MFAMethod when set, else by whatever factor a grant demands).
	Allowed bool
	// Grant is the grant that allows the target, nil when denied.
	Grant *Grant
	// Chain lists, for a model, every grant a request tries in order
	// (Chain[0] == Grant): the next applies when the caller's MFA is too
	// old for the one before. Empty when denied.
	Chain []*Grant
	// Principals are the names the identity matches in src: its login,
	// IdP groups, autogroups and policy groups.
	Principals []string
	// File is the policy file the grants are in.
	File string
	// Notes are what an admin may have meant: grants covering the target
	// for someone else, or covering the identity for something else.
	Notes []string
}

// Explain evaluates target, "model:NAME", "mcp:SERVER:TOOL" or
// "tag:NAME:PORT", for who. It
// fails only for a malformed or unknown target.
func (p *Policy) Explain(who Identity, target string) (*Explanation, error) {
	tg, err := p.parseTarget(target)
	if err != nil {
		return nil, err
	}
	e := &Explanation{Who: who, Target: target, File: p.File, Principals: p.principals(&who)}
	set := p.grantsFor(&who)
	if tg.isModel || tg.isMCP {
		chain := p.mcpChain(set, tg.server, tg.tool)
		if tg.isModel {
			chain = p.chain(set, tg.model)
		}
		for _, g := range chain {
			e.Chain = append(e.Chain, &p.Grants[g])
		}
	} else if g := p.reaches(set, []string{tg.dst.tag}, tg.dst.ports.First); g >= 0 {
		e.Chain = []*Grant{&p.Grants[g]}
	}
	if len(e.Chain) > 0 {
		e.Allowed, e.Grant = true, e.Chain[0]
		e.checkFactor()
		return e, nil
	}
	e.Notes = p.nearMisses(set, tg, &who)
	return e, nil
}

// nearMisses explains a denial: which grants cover the target but not who,
// and which cover who but not the target.
func (p *Policy) nearMisses(set grantSet, tg target, who *Identity) []string {
	var notes []string
	name := p.targetName(tg)
	for i := range p.Grants {
		g := &p.Grants[i]
		covers := containsSorted(g.models, tg.model)
		switch {
		case tg.isMCP:
			covers = g.mcpCovers(tg.server, tg.tool)
		case !tg.isModel:
			covers = g.dstCovers([]string{tg.dst.tag}, tg.dst.ports.First)
		}
		switch {
		case covers:
			notes = append(notes, fmt.Sprintf("%s (%s) covers %s for %s, which does not include %s",
				g.ID(), p.where(g.Pos), name, strings.Join(g.Src, ", "), who))
		case set.has(i):
			notes = append(notes, fmt.Sprintf("%s (%s) applies to %s but covers only %s",
				g.ID(), p.where(g.Pos), who, g.covers()))
		}
	}
	if len(notes) == 0 {
		notes = append(notes, fmt.Sprintf("no grant covers %s and none applies to %s", name, who))
	}
	return notes
}

// where formats a position as FILE:LINE:COL.
func (p *Policy) where(pos Pos) string {
	return fmt.Sprintf("%s:%d:%d", p.File, pos.Line, pos.Col)
}

func (p *Policy) targetName(tg target) string {
	if tg.isModel {
		return "model:" + p.Models[tg.model].Name
	}
	if tg.isMCP {
		return "mcp:" + tg.server + ":" + tg.tool
	}
	return fmt.Sprintf("%s:%d", tg.dst.tag, tg.dst.ports.First)
}

// covers describes what g grants.
func (g *Grant) covers() string {
	var parts []string
	for _, m := range g.Models {
		parts = append(parts, "model:"+m)
	}
	for _, m := range g.MCP {
		parts = append(parts, "mcp:"+m)
	}
	parts = append(parts, g.Dst...)
	return strings.Join(parts, ", ")
}

// String renders the explanation for people, as `policy explain` prints it.
func (e *Explanation) String() string {
	var b strings.Builder
	verb := "is denied"
	if e.Allowed {
		verb = "is allowed"
	}
	fmt.Fprintf(&b, "%s: %s %s %s\n", strings.ToUpper(verb[3:]), e.Who.String(), verb, e.Target)
	for i, g := range e.Chain {
		when := "by"
		if i > 0 {
			when = "when " + e.Chain[i-1].unmet() + ", by"
		}
		fmt.Fprintf(&b, "  %s %s (%s): %s\n", when, g.ID(), e.where(g), g.settings())
	}
	if n := len(e.Chain); n > 0 && e.Chain[n-1].demands() != "" && !strings.HasPrefix(e.Target, "tag:") {
		last := e.Chain[n-1]
		fmt.Fprintf(&b, "  when %s: denied until the caller signs in with %s again\n", last.unmet(), map[bool]string{true: "MFA", false: last.MFAFactor.Describe()}[last.MFAFactor == FactorAny])
	}
	for _, n := range e.Notes {
		fmt.Fprintf(&b, "  %s\n", n)
	}
	fmt.Fprintf(&b, "  %s matches: %s\n", e.Who.String(), orNone(e.Principals))
	return b.String()
}

func (e *Explanation) where(g *Grant) string {
	return fmt.Sprintf("%s:%d:%d", e.File, g.Pos.Line, g.Pos.Col)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing (an unknown identity matches no grant)"
	}
	return strings.Join(slices.Clone(s), ", ")
}

// settings summarises what a grant imposes.
func (g *Grant) settings() string {
	var parts []string
	if d := g.demands(); d != "" {
		parts = append(parts, d)
	}
	l := g.Limits
	for _, f := range []struct {
		name string
		v    int64
	}{{"rpm", int64(l.RPM)}, {"tpm", int64(l.TPM)}, {"concurrency", int64(l.Concurrency)}, {"tokensPerDay", l.TokensPerDay}, {"maxTokens", int64(l.MaxTokens)}} {
		if f.v != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", f.name, f.v))
		}
	}
	if g.Guard.Injection != "" || len(g.Guard.Redact) > 0 || g.Guard.Links != "" {
		parts = append(parts, fmt.Sprintf("guard injection=%s redact=%s links=%s", or(g.Guard.Injection, "off"), or(strings.Join(g.Guard.Redact, "+"), "none"), or(g.Guard.Links, "allow")))
	}
	if g.Audit.Prompts != "" || g.Audit.Retention != 0 {
		parts = append(parts, fmt.Sprintf("audit prompts=%s retention=%s", or(g.Audit.Prompts, "off"), or(g.Audit.Retention.Short(), "default")))
	}
	if len(parts) == 0 {
		return "no limits"
	}
	return strings.Join(parts, ", ")
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}
