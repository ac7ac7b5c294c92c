// Package wirepolicy converts what the policy compiler produces for a node
// (its grants, packet filter and per-caller access) into the wire's types:
// the one conversion, used by the coordinator's netmaps and by a node that
// compiles a local policy itself (node/tailnet). node/guard holds the
// conversion back.
package wirepolicy

import (
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// Rules is the one conversion of a node's compiled rules into the
// wire's types. A node always gets rules, empty when nothing is granted.
func Rules(r *policy.NodeRules) *wire.NodeRules {
	out := &wire.NodeRules{}
	if r == nil {
		return out
	}
	for _, g := range r.Grants {
		out.Grants = append(out.Grants, Grant(g))
	}
	for _, f := range r.Filter {
		fr := wire.FilterRule{Src: f.Src}
		if f.Ports != nil {
			fr.Ports = make([]wire.PortRange, len(f.Ports))
		}
		for i, p := range f.Ports {
			fr.Ports[i] = wire.PortRange(p)
		}
		out.Filter = append(out.Filter, fr)
	}
	for _, m := range r.Models {
		out.Models = append(out.Models, wire.ModelRule(m))
	}
	return out
}

// Access converts one caller's access entries into the wire's type.
func Access(as []policy.ModelAccess) []wire.ModelAccess {
	if as == nil {
		return nil
	}
	out := make([]wire.ModelAccess, len(as))
	for i, a := range as {
		out[i] = wire.ModelAccess(a)
	}
	return out
}

// wireGuard converts a grant's guard settings into the wire's type.
func wireGuard(g policy.Guard) wire.GuardRules {
	return wire.GuardRules{
		Injection: g.Injection, Redact: g.Redact, Links: g.Links,
		Prompts: wire.GuardActions(g.Prompts), Answers: wire.GuardActions(g.Answers), LinkAllow: g.LinkAllow,
		Detectors: wireDetectors(g.Detectors),
	}
}

// wireDetectors converts a grant's own screening rules.
func wireDetectors(ds []policy.Detector) []wire.GuardDetector {
	if len(ds) == 0 {
		return nil
	}
	out := make([]wire.GuardDetector, len(ds))
	for i, d := range ds {
		out[i] = wire.GuardDetector(d)
	}
	return out
}

// Grant converts one compiled grant into the wire's type.
func Grant(g policy.GrantRule) wire.GrantRule {
	return wire.GrantRule{
		ID:        g.ID,
		MFA:       wire.Duration(g.MFA),
		MFAFactor: string(g.MFAFactor),
		Limits:    wire.Limits(g.Limits),
		Guard:     wireGuard(g.Guard),
		Audit:     wire.AuditRules{Prompts: g.Audit.Prompts, Retention: wire.Duration(g.Audit.Retention)},
		Budgets:   g.Budgets,
	}
}
