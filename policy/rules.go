// Package policy parses, validates, tests and compiles moat's HuJSON policy:
// who may reach which models and which mesh ports, with what limits.
//
// It is pure: no network, no disk, no clock it does not receive. Every other
// package of moat may import it; it imports nothing of moat.
//
// This file holds the compiled value types that cross into the wire format
// (mesh/wire) and into the guard. Their JSON shape is part of the
// coordinator↔node protocol: add fields freely, never rename or retype one.
package policy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Limits are per-identity limits a grant puts on model use. A zero field
// means "no limit of that kind".
type Limits struct {
	RPM          int   `json:"rpm,omitempty"`          // requests per minute
	TPM          int   `json:"tpm,omitempty"`          // tokens (in+out) per minute
	Concurrency  int   `json:"concurrency,omitempty"`  // requests in flight at once
	TokensPerDay int64 `json:"tokensPerDay,omitempty"` // tokens (in+out) per UTC day
	MaxTokens    int   `json:"maxTokens,omitempty"`    // cap on a request's answer length; 0: the model's MaxOutputTokens
}

// Guard says how the on-node guard screens inputs and outputs.
// The zero value screens nothing.
type Guard struct {
	Injection string   `json:"injection,omitempty"` // "", "off", "flag" or "block"
	Redact    []string `json:"redact,omitempty"`    // any of "secrets", "pii"
	Links     string   `json:"links,omitempty"`     // "", "allow" or "block-external"
	// Prompts and Answers set, per category, what the guard does on that
	// side; a category they leave empty keeps what the three settings
	// above imply for it. The zero value changes nothing.
	Prompts Actions `json:"prompts,omitzero"`
	Answers Actions `json:"answers,omitzero"`
	// LinkAllow lists where links may point without counting as external:
	// host names ("docs.example.com"), every subdomain of one
	// ("*.corp.example"), IP addresses and CIDR prefixes ("10.0.0.0/8").
	// Empty: only the node's own allowlist.
	LinkAllow []string `json:"linkAllow,omitempty"`
	// Detectors are the policy's own rules (see Detector), screened with
	// the actions of their category. Empty: the built-in rules only.
	Detectors []Detector `json:"detectors,omitempty"`
}

// Actions says, per screening category, what the guard does: "off",
// "flag" (recorded in the audit log only), "redact" (the match is replaced
// by a marker such as [REDACTED:aws-access-key]) or "block" (the request
// is refused, or the rest of the answer withheld). "" leaves the category
// as Guard's other settings say.
type Actions struct {
	Secrets   string `json:"secrets,omitempty"`   // credentials and keys
	PII       string `json:"pii,omitempty"`       // personal data
	Injection string `json:"injection,omitempty"` // prompt injection, hidden text
	Links     string `json:"links,omitempty"`     // links to hosts outside LinkAllow
}

// Audit says what the audit record keeps of a request.
// The zero value keeps metadata only (prompts "off").
type Audit struct {
	Prompts   string   `json:"prompts,omitempty"`   // "", "off", "hash" or "full"
	Retention Duration `json:"retention,omitempty"` // 0 = the coordinator's default
}

// GrantRule is the compiled form of one grant, as a node enforces it.
type GrantRule struct {
	// ID names the grant in audit records and explanations,
	// e.g. "grants[2]"; stable while the policy text is unchanged.
	ID string `json:"id"`
	// MFA is the longest time since the caller's last MFA that the
	// grant accepts; 0 means MFA freshness is not checked.
	MFA    Duration `json:"mfa,omitempty"`
	Limits Limits   `json:"limits,omitzero"`
	Guard  Guard    `json:"guard,omitzero"`
	Audit  Audit    `json:"audit,omitzero"`
	// Budgets are the units (UnitTokens, UnitMoney) the policy's budgets
	// may count for callers of the grant: the node leases those from the
	// coordinator for every request. Empty: no budget counts the grant.
	Budgets []string `json:"budgets,omitempty"`

	// MFAFactor is the kind of second factor the grant demands; "" is
	// any.
	MFAFactor Factor `json:"mfaFactor,omitempty"`
}

// ModelAccess says that a caller may use Model on a node under the grant at
// index Grant of that node's NodeRules.Grants.
//
// A caller's list may hold several entries for one model, in the order a
// request tries them: the first grant whose MFA requirement the caller
// meets applies (see docs/policy.md, "When several grants match", and
// GuardTable, which implements it).
type ModelAccess struct {
	Model string `json:"model"`
	Grant int    `json:"grant"`
}

// PortRange is an inclusive range of TCP/UDP ports.
type PortRange struct {
	First uint16 `json:"first"`
	Last  uint16 `json:"last"`
}

// Contains reports whether port lies in r.
func (r PortRange) Contains(port uint16) bool { return port >= r.First && port <= r.Last }

// FilterRule lets packets from any of Src reach any of Ports on the node's
// mesh addresses. A node drops mesh traffic no rule accepts.
type FilterRule struct {
	Src   []netip.Prefix `json:"src"`
	Ports []PortRange    `json:"ports"`
}

// NodeRules is everything one node enforces beyond its peer list: the grants
// its callers' ModelAccess entries point into, its mesh packet filter, and
// the output bounds of the models it serves that the policy sets.
type NodeRules struct {
	Grants []GrantRule  `json:"grants,omitempty"`
	Filter []FilterRule `json:"filter,omitempty"`
	// Models holds the models the node serves that set an output bound,
	// a price or encryptedAtRest, sorted by name; a model not listed has
	// the defaults.
	Models []ModelRule `json:"models,omitempty"`
}

// ModelRule is what the policy lets one request of a model ask for, and
// what its tokens cost. A zero field means the default
// (DefaultMaxOutputTokens, DefaultMaxChoices; free).
type ModelRule struct {
	Model string `json:"model"`
	// MaxOutputTokens caps a request's answer length under grants that
	// set no maxTokens.
	MaxOutputTokens int `json:"maxOutputTokens,omitempty"`
	// MaxChoices is the most answers (n, best_of, batched prompts) one
	// request may ask for.
	MaxChoices int `json:"maxChoices,omitempty"`
	// InputPrice and OutputPrice are what a million prompt and answer
	// tokens cost, in micro-units of the policy's currency; 0: free.
	InputPrice  Micros `json:"inputPrice,omitempty"`
	OutputPrice Micros `json:"outputPrice,omitempty"`
	// EncryptedAtRest makes the node refuse the model (503) while its
	// weights, audit spool or state are not on encrypted storage.
	EncryptedAtRest bool `json:"encryptedAtRest,omitempty"`
}

// Duration is a time.Duration written as text: Go's form ("90s", "12h") or
// whole days ("7d").
type Duration time.Duration

// ParseDuration parses s as a Duration; negative values are refused.
func ParseDuration(s string) (Duration, error) {
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int64
		n, err = strconv.ParseInt(days, 10, 32)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: want a positive value like \"90s\", \"12h\" or \"7d\"", s)
	}
	return Duration(d), nil
}

// String formats d the way ParseDuration reads it.
func (d Duration) String() string { return time.Duration(d).String() }

// Short formats d as people write it: "12h", "1h30m", "90s", "7d"; ""
// for 0.
func (d Duration) Short() string {
	const day = Duration(24 * time.Hour)
	switch {
	case d == 0:
		return ""
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}
