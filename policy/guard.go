package policy

import (
	"fmt"
	"time"
)

// Verdict is the outcome of a guard decision.
type Verdict uint8

const (
	// Deny: no grant lets the caller use the model on this node, or the
	// caller is unknown. The zero Verdict, so failures deny.
	Deny Verdict = iota
	// Allow: the returned grant applies to the request.
	Allow
	// DenyMFA: a grant would allow the request, but the caller's last MFA
	// is older than it accepts (or missing, or of a weaker factor). The returned grant is the one
	// with the loosest requirement, to tell the caller what would do.
	DenyMFA
)

// String returns "deny", "allow" or "deny-mfa".
func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case DenyMFA:
		return "deny-mfa"
	}
	return "deny"
}

// GuardTable answers, per request, whether a caller may use a model on this
// node and under which grant. It is built once per netmap and read by any
// number of goroutines; a decision is one map lookup and allocates nothing.
// A nil *GuardTable denies everything.
type GuardTable struct {
	rules  []GrantRule
	chains map[accessKey][]*GrantRule
}

type accessKey struct{ caller, model string }

// NewGuardTable builds a node's table from its rules and, per caller ID,
// the caller's access list (NetMap peers' Access, MemberRules.Access). It
// fails if an entry points at a grant rules does not hold.
func NewGuardTable(rules *NodeRules, access map[string][]ModelAccess) (*GuardTable, error) {
	t := &GuardTable{chains: make(map[accessKey][]*GrantRule)}
	if rules != nil {
		t.rules = append([]GrantRule(nil), rules.Grants...) // the table must not change under its readers
	}
	for caller, list := range access {
		for _, a := range list {
			if a.Grant < 0 || a.Grant >= len(t.rules) {
				return nil, fmt.Errorf("guard table: caller %q, model %q: grant %d does not exist (the node has %d)", caller, a.Model, a.Grant, len(t.rules))
			}
			k := accessKey{caller, a.Model}
			t.chains[k] = append(t.chains[k], &t.rules[a.Grant])
		}
	}
	return t, nil
}

// GuardTable builds the guard table of a compiled node.
func (m *MemberRules) GuardTable() (*GuardTable, error) {
	access := make(map[string][]ModelAccess, len(m.Access))
	for _, ca := range m.Access {
		access[ca.Caller] = ca.Access
	}
	return NewGuardTable(m.Rules, access)
}

// Decide returns whether caller may use model now. mfaAge is the time since
// the caller's last MFA; a negative mfaAge means it never did one, which
// only grants without an mfa requirement accept. method is the RFC 8176
// method that MFA was proved with ("hwk", "swk", "otp", "mfa"; "" unknown),
// which grants demanding a factor check. The grant is the one whose
// limits, guard and audit settings apply; it is nil for Deny and must not
// be modified.
func (t *GuardTable) Decide(caller, model string, mfaAge time.Duration, method string) (*GrantRule, Verdict) {
	if t == nil {
		return nil, Deny
	}
	chain := t.chains[accessKey{caller, model}]
	for _, g := range chain {
		if g.Meets(mfaAge, method) {
			return g, Allow
		}
	}
	if len(chain) > 0 {
		return chain[len(chain)-1], DenyMFA
	}
	return nil, Deny
}

// Len returns the number of (caller, model) pairs the table allows.
func (t *GuardTable) Len() int {
	if t == nil {
		return 0
	}
	return len(t.chains)
}
