package guard

import (
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// policyRules is the one conversion of a netmap's rules from the wire
// into the policy package's types, which the guard table and the
// screening evaluate. nil stays nil (a netmap without rules grants
// nothing).
func policyRules(r *wire.NodeRules) *policy.NodeRules {
	if r == nil {
		return nil
	}
	out := &policy.NodeRules{}
	for _, g := range r.Grants {
		out.Grants = append(out.Grants, PolicyGrant(g))
	}
	for _, f := range r.Filter {
		fr := policy.FilterRule{Src: f.Src}
		if f.Ports != nil {
			fr.Ports = make([]policy.PortRange, len(f.Ports))
		}
		for i, p := range f.Ports {
			fr.Ports[i] = policy.PortRange(p)
		}
		out.Filter = append(out.Filter, fr)
	}
	for _, m := range r.Models {
		out.Models = append(out.Models, policy.ModelRule(m))
	}
	return out
}

// policyAccess converts one peer's access entries from the wire.
func policyAccess(as []wire.ModelAccess) []policy.ModelAccess {
	if as == nil {
		return nil
	}
	out := make([]policy.ModelAccess, len(as))
	for i, a := range as {
		out[i] = policy.ModelAccess(a)
	}
	return out
}

// policyGuard converts a grant's guard settings from the wire.
func policyGuard(g wire.GuardRules) policy.Guard {
	return policy.Guard{
		Injection: g.Injection, Redact: g.Redact, Links: g.Links,
		Prompts: policy.Actions(g.Prompts), Answers: policy.Actions(g.Answers), LinkAllow: g.LinkAllow,
		Detectors: policyDetectors(g.Detectors),
	}
}

// policyDetectors converts a grant's own screening rules.
func policyDetectors(ds []wire.GuardDetector) []policy.Detector {
	if len(ds) == 0 {
		return nil
	}
	out := make([]policy.Detector, len(ds))
	for i, d := range ds {
		out[i] = policy.Detector(d)
	}
	return out
}

// PolicyGrant converts one grant from the wire into the policy package's
// type, as the guard and node/mcpguard enforce it.
func PolicyGrant(g wire.GrantRule) policy.GrantRule {
	return policy.GrantRule{
		ID:        g.ID,
		MFA:       policy.Duration(g.MFA),
		MFAFactor: policy.Factor(g.MFAFactor),
		Limits:    policy.Limits(g.Limits),
		Guard:     policyGuard(g.Guard),
		Audit:     policy.Audit{Prompts: g.Audit.Prompts, Retention: policy.Duration(g.Audit.Retention)},
		Budgets:   g.Budgets,
	}
}
