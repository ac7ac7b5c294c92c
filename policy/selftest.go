package policy

import (
	"fmt"
	"strings"
)

// RunTests evaluates the policy's "tests". It returns nil when every
// assertion holds, or an ErrorList with one *Error per failed assertion,
// located at the assertion. Tests assume a freshly completed MFA, so grants
// with an mfa requirement count as allowing.
func (p *Policy) RunTests() error {
	var errs ErrorList
	for i := range p.Tests {
		t := &p.Tests[i]
		set := p.grantsFor(&t.Who)
		for _, tg := range t.Accept {
			if by, err := p.allowedBy(set, tg.Text); err != nil || by < 0 {
				errs = append(errs, p.testError(tg, "%s should be allowed %s but no grant allows it; run `moat-coordinator policy explain` to see why",
					t.Who.String(), tg.Text))
			}
		}
		for _, tg := range t.Deny {
			if by, err := p.allowedBy(set, tg.Text); err == nil && by >= 0 {
				g := &p.Grants[by]
				errs = append(errs, p.testError(tg, "%s should be denied %s but is allowed by %s (line %d)",
					t.Who.String(), tg.Text, g.ID(), g.Pos.Line))
			}
		}
	}
	return errs.sorted()
}

func (p *Policy) testError(tg Target, format string, args ...any) *Error {
	return &Error{File: p.File, Line: tg.Pos.Line, Col: tg.Pos.Col, Msg: "test failed: " + fmt.Sprintf(format, args...)}
}

// allowedBy returns the index of the grant that lets an identity holding
// the grants in set reach target with fresh MFA, or -1.
func (p *Policy) allowedBy(set grantSet, target string) (int, error) {
	tg, err := p.parseTarget(target)
	if err != nil {
		return -1, err
	}
	if tg.isModel {
		if chain := p.chain(set, tg.model); len(chain) > 0 {
			return chain[0], nil
		}
		return -1, nil
	}
	if tg.isMCP {
		if chain := p.mcpChain(set, tg.server, tg.tool); len(chain) > 0 {
			return chain[0], nil
		}
		return -1, nil
	}
	return p.reaches(set, []string{tg.dst.tag}, tg.dst.ports.First), nil
}

// target is a parsed "model:NAME", "mcp:SERVER:TOOL" or "tag:NAME:PORT".
type target struct {
	isModel      bool
	model        int    // index into Policy.Models
	dst          netDst // with a single port
	isMCP        bool
	server, tool string // of an MCP target
}

func (p *Policy) parseTarget(s string) (target, error) {
	if server, tool, isMCP, err := mcpTarget(s); isMCP {
		return p.parseMCPTarget(server, tool, err)
	}
	if name, ok := strings.CutPrefix(s, "model:"); ok {
		m, known := p.modelIndex[name]
		if !known {
			return target{}, fmt.Errorf("unknown model %q: the policy declares %d models; check the name", name, len(p.Models))
		}
		return target{isModel: true, model: m}, nil
	}
	d, err := parseDst(s)
	if err != nil || d.tag == "" || d.ports.First != d.ports.Last {
		return target{}, fmt.Errorf("%q is not a target; write model:NAME, mcp:SERVER:TOOL or tag:NAME:PORT", s)
	}
	if _, known := p.TagOwners[d.tag]; !known {
		return target{}, fmt.Errorf("unknown tag %q: it is not under \"tagOwners\"", d.tag)
	}
	return target{dst: d}, nil
}
